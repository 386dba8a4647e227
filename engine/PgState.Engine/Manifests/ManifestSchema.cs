using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using PgState.Engine.Diagnostics;

namespace PgState.Engine.Manifests;

/// <summary>
/// schemas/pgstate.schema.json (embedded at build time), read into a small model and applied to
/// the positioned YAML tree. It implements the keywords the schema uses, with JSON Schema's
/// meaning (patterns are ECMA-262: "$" is the end of the string, never "before a final newline";
/// lengths count code points), refuses any keyword it does not know, and fills in each property's
/// "default" so that a module reads a default from the schema, the one place it is written.
/// A test checks it agrees with NJsonSchema on a corpus of documents.
/// </summary>
internal static partial class ManifestSchema
{
    private static readonly Lazy<SchemaNode> Root = new(() => Load(Text));

    internal static string Text
    {
        get
        {
            using var stream = typeof(ManifestSchema).Assembly.GetManifestResourceStream("pgstate.schema.json")
                ?? throw new InvalidOperationException("embedded schema missing");
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
    }

    /// <summary>One schema violation: what kind, about which path (a missing or unknown key's own path), and the message.</summary>
    internal sealed record SchemaError(string Kind, string Subject, string Message, SourcePosition Position);

    /// <summary>Validates a document, reports every problem, and fills in schema defaults.</summary>
    public static void Validate(YamlNode document, DiagnosticBag diagnostics)
    {
        foreach (var error in Errors(document, applyDefaults: true))
        {
            diagnostics.Error(DiagnosticCodes.Schema, error.Message, error.Position);
        }
    }

    /// <summary>Every violation, deduplicated (tests compare them with another validator's).</summary>
    internal static IReadOnlyList<SchemaError> Errors(YamlNode document, bool applyDefaults = false)
    {
        var errors = new List<SchemaError>();
        Check(Root.Value, document, errors, applyDefaults);
        return [.. errors.Distinct()];
    }

    /// <summary>The schema node at a JSON-pointer-like path of property names (for tests and documentation checks).</summary>
    internal static SchemaNode At(params string[] path)
    {
        var node = Root.Value;
        foreach (var name in path)
        {
            node = node.Resolve().Properties![name];
        }
        return node.Resolve();
    }

    internal static SchemaNode Load(string json)
    {
        using var document = JsonDocument.Parse(json);
        var definitions = new Dictionary<string, SchemaNode>(StringComparer.Ordinal);
        var root = document.RootElement;
        if (root.TryGetProperty("definitions", out var defs))
        {
            foreach (var p in defs.EnumerateObject())
            {
                definitions[p.Name] = new SchemaNode();
            }
            foreach (var p in defs.EnumerateObject())
            {
                Fill(definitions[p.Name], p.Value, definitions, "definitions/" + p.Name);
            }
        }
        var schema = new SchemaNode();
        Fill(schema, root, definitions, "", isRoot: true);
        return schema;
    }

    internal sealed class SchemaNode
    {
        public SchemaNode? Ref;
        public HashSet<string>? Types;
        public Dictionary<string, SchemaNode>? Properties;
        public List<string>? PropertyOrder;
        public List<string>? Required;
        public bool? AdditionalAllowed;
        public SchemaNode? Additional;
        public SchemaNode? Items;
        public List<JsonElement>? Enum;
        public JsonElement? Const;
        public string? Pattern;
        public Regex? PatternRegex;
        public decimal? Minimum;
        public decimal? Maximum;
        public int? MinLength;
        public int? MaxLength;
        public int? MinItems;
        public int? MaxItems;
        public int? MinProperties;
        public int? MaxProperties;
        public List<SchemaNode>? AnyOf;
        public SchemaNode? PropertyNames;
        public JsonElement? Default;
        public string? Description;

        public SchemaNode Resolve()
        {
            var node = this;
            for (var i = 0; node.Ref is not null && i < 16; i++)
            {
                node = node.Ref;
            }
            return node;
        }
    }

    private static readonly HashSet<string> Annotations = ["$schema", "$id", "$comment", "title", "examples", "markdownDescription"];

    private static void Fill(SchemaNode schema, JsonElement node, Dictionary<string, SchemaNode> definitions, string at, bool isRoot = false)
    {
        foreach (var p in node.EnumerateObject())
        {
            var v = p.Value;
            switch (p.Name)
            {
                case var a when Annotations.Contains(a):
                    break;
                case "description":
                    schema.Description = v.GetString();
                    break;
                case "definitions" when isRoot:
                    break;
                case "default":
                    schema.Default = v.Clone();
                    break;
                case "$ref":
                    var name = v.GetString()!.Replace("#/definitions/", "", StringComparison.Ordinal);
                    schema.Ref = definitions.TryGetValue(name, out var target) ? target : throw Unsupported($"$ref {v.GetString()} at {At()}");
                    break;
                case "type":
                    schema.Types = v.ValueKind == JsonValueKind.Array ? [.. v.EnumerateArray().Select(t => TypeName(t.GetString()!))] : [TypeName(v.GetString()!)];
                    break;
                case "properties":
                    schema.Properties = new(StringComparer.Ordinal);
                    schema.PropertyOrder = [];
                    foreach (var prop in v.EnumerateObject())
                    {
                        var child = new SchemaNode();
                        Fill(child, prop.Value, definitions, at + "/" + prop.Name);
                        schema.Properties[prop.Name] = child;
                        schema.PropertyOrder.Add(prop.Name);
                    }
                    break;
                case "required":
                    schema.Required = [.. v.EnumerateArray().Select(r => r.GetString()!)];
                    break;
                case "additionalProperties":
                    if (v.ValueKind is JsonValueKind.True or JsonValueKind.False)
                    {
                        schema.AdditionalAllowed = v.GetBoolean();
                    }
                    else
                    {
                        schema.Additional = new SchemaNode();
                        Fill(schema.Additional, v, definitions, at + "/additionalProperties");
                    }
                    break;
                case "items":
                    schema.Items = new SchemaNode();
                    Fill(schema.Items, v, definitions, at + "/items");
                    break;
                case "propertyNames":
                    schema.PropertyNames = new SchemaNode();
                    Fill(schema.PropertyNames, v, definitions, at + "/propertyNames");
                    break;
                case "enum":
                    schema.Enum = [.. v.EnumerateArray().Select(e => e.Clone())];
                    break;
                case "const":
                    schema.Const = v.Clone();
                    break;
                case "pattern":
                    schema.Pattern = v.GetString()!;
                    schema.PatternRegex = EcmaRegex(schema.Pattern);
                    break;
                case "minimum":
                    schema.Minimum = v.GetDecimal();
                    break;
                case "maximum":
                    schema.Maximum = v.GetDecimal();
                    break;
                case "minLength":
                    schema.MinLength = v.GetInt32();
                    break;
                case "maxLength":
                    schema.MaxLength = v.GetInt32();
                    break;
                case "minItems":
                    schema.MinItems = v.GetInt32();
                    break;
                case "maxItems":
                    schema.MaxItems = v.GetInt32();
                    break;
                case "minProperties":
                    schema.MinProperties = v.GetInt32();
                    break;
                case "maxProperties":
                    schema.MaxProperties = v.GetInt32();
                    break;
                case "anyOf":
                    schema.AnyOf = [];
                    var i = 0;
                    foreach (var s in v.EnumerateArray())
                    {
                        var branch = new SchemaNode();
                        Fill(branch, s, definitions, $"{At()}/anyOf/{i++}");
                        schema.AnyOf.Add(branch);
                    }
                    break;
                default:
                    throw Unsupported($"keyword '{p.Name}' at {(at.Length == 0 ? "/" : At())}");
            }
        }
    }

    private static string TypeName(string name) => name switch
    {
        "object" or "array" or "string" or "integer" or "number" or "boolean" or "null" => name,
        _ => throw Unsupported($"type '{name}'"),
    };

    private static NotSupportedException Unsupported(string what) =>
        new($"schemas/pgstate.schema.json uses {what}, which pgstate's validator does not know: teach it, do not drop the rule");

    /// <summary>
    /// A .NET regex with the meaning ECMA-262 gives the pattern: ASCII \d \w \s, and an unescaped
    /// "$" outside a character class matching only at the very end (.NET's "$" also matches
    /// before a final newline, which let "0700\n" through as a mode).
    /// </summary>
    internal static Regex EcmaRegex(string pattern)
    {
        var sb = new StringBuilder();
        var inClass = false;
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length)
            {
                sb.Append(c).Append(pattern[++i]);
                continue;
            }
            if (c == '[')
            {
                inClass = true;
            }
            else if (c == ']')
            {
                inClass = false;
            }
            sb.Append(c == '$' && !inClass ? "(?!\\n)$" : c.ToString());
        }
        return new Regex(sb.ToString(), RegexOptions.ECMAScript | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(2));
    }

    private static bool TypeMatches(string type, YamlNode node) => (type, node) switch
    {
        ("object", YamlMapping) => true,
        ("array", YamlSequence) => true,
        ("string", YamlScalar { Kind: ScalarKind.String }) => true,
        ("integer", YamlScalar { Kind: ScalarKind.Integer }) => true,
        ("number", YamlScalar { Kind: ScalarKind.Integer or ScalarKind.Float }) => true,
        ("boolean", YamlScalar { Kind: ScalarKind.Boolean }) => true,
        ("null", YamlScalar { Kind: ScalarKind.Null }) => true,
        _ => false,
    };

    private static string Where(YamlNode node) => node.Path is { Length: > 0 } p ? p : "the document";

    private static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;

    private static void Check(SchemaNode schemaIn, YamlNode node, List<SchemaError> errors, bool applyDefaults)
    {
        var schema = schemaIn.Resolve();
        // Only an error needs the path: computing it for every node was a tenth of validating a large manifest.
        string At() => Where(node);
        if (schema.Types is { } types && !types.Any(t => TypeMatches(t, node)))
        {
            errors.Add(new("type", node.Path, $"{At()}: expected {DescribeTypes(types)}, got {Got(node)}", node.Position));
            return;
        }
        if (schema.Enum is { } values && !values.Any(v => JsonEquals(v, node)))
        {
            var allowed = string.Join(", ", values.Select(Show));
            errors.Add(new("enum", node.Path, values.Count == 1 ? $"{At()}: must be {allowed}, got {Shown(node)}" : $"{At()}: {Shown(node)} is not one of {allowed}", node.Position));
            return;
        }
        if (schema.Const is { } constant && !JsonEquals(constant, node))
        {
            errors.Add(new("enum", node.Path, $"{At()}: must be {Show(constant)}, got {Shown(node)}", node.Position));
            return;
        }
        if (schema.AnyOf is { } anyOf)
        {
            if (!anyOf.Any(branch =>
            {
                var scratch = new List<SchemaError>();
                Check(branch, node, scratch, applyDefaults: false);
                return scratch.Count == 0;
            }))
            {
                errors.Add(new("anyOf", node.Path, $"{At()}: {Shown(node)} matches none of the allowed forms", node.Position));
            }
        }
        switch (node)
        {
            case YamlScalar { Kind: ScalarKind.String } s:
                var length = CodePoints(s.Text);
                if (schema.MinLength is { } min && length < min)
                {
                    errors.Add(new("minLength", node.Path, min == 1 ? $"{At()}: must not be empty" : $"{At()}: must be at least {min} characters", node.Position));
                }
                if (schema.MaxLength is { } max && length > max)
                {
                    errors.Add(new("maxLength", node.Path, $"{At()}: is {length} characters long, more than the {max} allowed", node.Position));
                }
                if (schema.PatternRegex is { } regex && !Matches(regex, s.Text))
                {
                    errors.Add(new("pattern", node.Path, $"{At()}: {Shown(node)} does not match {Explain(schema.Pattern!)}", node.Position));
                }
                break;
            case YamlScalar { Kind: ScalarKind.Integer or ScalarKind.Float } n:
                var value = n.AsDecimal;
                var approx = n.AsDouble ?? 0;
                if (schema.Minimum is { } minimum && (value is { } v1 ? v1 < minimum : approx < (double)minimum))
                {
                    errors.Add(new("minimum", node.Path, $"{At()}: {n.Text} is below the minimum {minimum}", node.Position));
                }
                if (schema.Maximum is { } maximum && (value is { } v2 ? v2 > maximum : approx > (double)maximum))
                {
                    errors.Add(new("maximum", node.Path, $"{At()}: {n.Text} is above the maximum {maximum}", node.Position));
                }
                break;
            case YamlSequence seq:
                if (schema.MinItems is { } minItems && seq.Count < minItems)
                {
                    errors.Add(new("minItems", node.Path, $"{At()}: needs at least {minItems} item(s)", node.Position));
                }
                if (schema.MaxItems is { } maxItems && seq.Count > maxItems)
                {
                    errors.Add(new("maxItems", node.Path, $"{At()}: has {seq.Count} items, more than the {maxItems} allowed", node.Position));
                }
                if (schema.Items is { } items)
                {
                    foreach (var item in seq.Items)
                    {
                        Check(items, item, errors, applyDefaults);
                    }
                }
                break;
            case YamlMapping map:
                CheckMapping(schema, map, errors, applyDefaults);
                break;
        }
    }

    private static void CheckMapping(SchemaNode schema, YamlMapping map, List<SchemaError> errors, bool applyDefaults)
    {
        string At() => Where(map);
        var written = map.Values.Where(v => !v.IsDefault).ToList();
        if ((schema.MinProperties is { } minP && written.Count < minP) || (schema.MaxProperties is { } maxP && written.Count > maxP))
        {
            var names = schema.Properties?.Keys.Where(k => k != "update") ?? [];
            errors.Add(new("properties", map.Path, $"{At()}: give exactly one of: {string.Join(", ", names)}", map.Position));
        }
        foreach (var required in schema.Required ?? [])
        {
            if (!map.Contains(required))
            {
                errors.Add(new("required", Join(map.Path, required), $"missing required key '{required}' in {At()}", map.KeyOrPosition));
            }
        }
        foreach (var value in map.Values)
        {
            var key = value.Key!;
            if (schema.PropertyNames is { } names)
            {
                var keyNode = new YamlScalar(value.KeyOrPosition, key, ScalarKind.String);
                var scratch = new List<SchemaError>();
                Check(names, keyNode, scratch, applyDefaults: false);
                foreach (var e in scratch)
                {
                    errors.Add(new("propertyNames", Join(map.Path, key), $"'{TextSafety.Printable(key)}' is not a valid key in {At()}", e.Position));
                }
            }
            if (schema.Properties is { } properties && properties.TryGetValue(key, out var property))
            {
                Check(property, value, errors, applyDefaults);
            }
            else if (schema.Additional is { } additional)
            {
                Check(additional, value, errors, applyDefaults);
            }
            else if (schema.AdditionalAllowed == false)
            {
                var known = string.Join(", ", schema.PropertyOrder ?? []);
                errors.Add(new("additional", value.Path, $"unknown key '{TextSafety.Printable(key)}' in {(map.Parent is null ? "the top level" : At())}" + (known.Length > 0 ? $" (expected one of: {known})" : ""), value.KeyOrPosition));
            }
        }
        if (applyDefaults && schema.Properties is { } all)
        {
            foreach (var name in schema.PropertyOrder!)
            {
                var property = all[name];
                var fallback = property.Default ?? property.Resolve().Default;
                if (!map.Contains(name) && fallback is { } d && DefaultNode(map, d) is { } filled)
                {
                    map.TryAdd(name, map.Position, filled);
                }
            }
        }
    }

    private static YamlScalar? DefaultNode(YamlMapping parent, JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => YamlScalar.Default(parent, value.GetString()!, ScalarKind.String),
        JsonValueKind.True => YamlScalar.Default(parent, "true", ScalarKind.Boolean),
        JsonValueKind.False => YamlScalar.Default(parent, "false", ScalarKind.Boolean),
        JsonValueKind.Number => YamlScalar.Default(parent, value.GetRawText(), value.TryGetInt64(out _) ? ScalarKind.Integer : ScalarKind.Float),
        _ => null,
    };

    private static bool Matches(Regex regex, string text)
    {
        try
        {
            return regex.IsMatch(text);
        }
        catch (RegexMatchTimeoutException)
        {
            return false;
        }
    }

    internal static int CodePoints(string text)
    {
        var n = 0;
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            n++;
        }
        return n;
    }

    private static bool JsonEquals(JsonElement expected, YamlNode node) => (expected.ValueKind, node) switch
    {
        (JsonValueKind.String, YamlScalar { Kind: ScalarKind.String } s) => expected.ValueEquals(s.Text),
        (JsonValueKind.True, YamlScalar { Kind: ScalarKind.Boolean } b) => b.AsBoolean == true,
        (JsonValueKind.False, YamlScalar { Kind: ScalarKind.Boolean } b) => b.AsBoolean == false,
        (JsonValueKind.Null, YamlScalar { Kind: ScalarKind.Null }) => true,
        (JsonValueKind.Number, YamlScalar { Kind: ScalarKind.Integer or ScalarKind.Float } n) => n.AsDecimal == expected.GetDecimal(),
        _ => false,
    };

    private static string Show(JsonElement e) => e.ValueKind == JsonValueKind.String ? $"\"{e.GetString()}\"" : e.GetRawText();

    private static string Shown(YamlNode node) => node switch
    {
        YamlScalar s => s.Kind == ScalarKind.String ? "\"" + TextSafety.Printable(s.Text) + "\"" : s.Shown,
        _ => node.KindName,
    };

    private static string Got(YamlNode node) => node switch
    {
        YamlScalar s => $"{s.KindName} {Shown(node)}",
        _ => node.KindName,
    };

    private static string DescribeTypes(HashSet<string> types)
    {
        string[] order = ["string", "integer", "number", "boolean", "object", "array", "null"];
        return string.Join(" or ", order.Where(types.Contains).Select(t => t switch { "object" => "a mapping", "array" => "a list", _ => t }));
    }

    private static string Explain(string pattern) => pattern switch
    {
        "^/" => "an absolute path (starting with /)",
        "^[0-9]+(ms|s|min|h|d)$" => "a duration such as 30s, 5min or 1h",
        "^[0-9]+(kB|MB|GB|TB)$" => "a size such as 512MB or 10GB",
        "^0?[0-7]{3}$" => "an octal mode such as \"0700\"",
        _ => $"the pattern {pattern}",
    };

    internal static string ShowNumber(decimal d) => d.ToString(CultureInfo.InvariantCulture);
}
