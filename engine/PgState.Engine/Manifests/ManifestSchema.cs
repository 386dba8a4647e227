using Newtonsoft.Json.Linq;
using NJsonSchema;
using NJsonSchema.Validation;
using PgState.Engine.Diagnostics;

namespace PgState.Engine.Manifests;

/// <summary>Validates manifest documents against schemas/pgstate.schema.json (embedded at build time).</summary>
internal static class ManifestSchema
{
    private static readonly Lazy<JsonSchema> Schema = new(() => SchemaBuilder.Build(Text));

    /// <summary>The schema's JSON text, embedded from schemas/pgstate.schema.json at build time.</summary>
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

    /// <summary>Validation against a given schema object (tests compare builders).</summary>
    internal static DiagnosticBag ValidateWith(JsonSchema schema, JToken document, SourcePosition fallback)
    {
        var bag = new DiagnosticBag();
        Report(schema.Validate(document), fallback, bag);
        return bag;
    }

    /// <summary>
    /// Starts loading the schema on another core. Loading is mostly one-time JIT warm-up of
    /// NJsonSchema and Newtonsoft (~200 ms); overlapping it with argument parsing and YAML
    /// reading takes it off the critical path of every command.
    /// </summary>
    public static void Preload() => ThreadPool.UnsafeQueueUserWorkItem(_ =>
    {
        try
        {
            _ = Schema.Value;
        }
        catch (Exception)
        {
            // Lazy keeps the exception: the main path rethrows it where it is reported.
        }
    }, null);

    public static void Validate(JToken document, SourcePosition fallback, DiagnosticBag diagnostics) =>
        Report(Schema.Value.Validate(document), fallback, diagnostics);

    private static void Report(ICollection<ValidationError> errors, SourcePosition fallback, DiagnosticBag diagnostics)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var error in Flatten(errors))
        {
            var (message, position) = Describe(error);
            var diagnostic = new Diagnostic("PGS010", Severity.Error, message, position ?? fallback);
            if (seen.Add(diagnostic.ToString()))
            {
                diagnostics.AddRange([diagnostic]);
            }
        }
    }

    private static IEnumerable<ValidationError> Flatten(IEnumerable<ValidationError> errors)
    {
        foreach (var error in errors)
        {
            if (error is ChildSchemaValidationError child && child.Kind != ValidationErrorKind.NotAnyOf)
            {
                foreach (var inner in Flatten(child.Errors.SelectMany(e => e.Value)))
                {
                    yield return inner;
                }
            }
            else
            {
                yield return error;
            }
        }
    }

    private static (string Message, SourcePosition? Position) Describe(ValidationError error)
    {
        var token = error.Token;
        var path = token?.PathOf() ?? "";
        var at = path.Length == 0 ? "the document" : path;
        var position = token.PositionOf();
        switch (error.Kind)
        {
            case ValidationErrorKind.NoAdditionalPropertiesAllowed:
                {
                    var parentPath = token?.Parent?.Parent?.PathOf() ?? "";
                    var known = string.Join(", ", error.Schema.Properties.Keys);
                    var where = parentPath.Length == 0 ? "the top level" : parentPath;
                    return ($"unknown key '{error.Property}' in {where}" + (known.Length > 0 ? $" (expected one of: {known})" : ""), position);
                }
            case ValidationErrorKind.PropertyRequired:
                // Point at the key that owns the mapping ("metadata:"), not at its first child.
                var owner = token?.Parent is JProperty ownerProperty ? ownerProperty.PositionOf() : position;
                return ($"missing required key '{error.Property}' in {at}", owner);
            case ValidationErrorKind.NoTypeValidates:
                return ($"{at}: expected {DescribeType(error.Schema)}, got {KindOf(token)} {Show(token)}", position);
            case ValidationErrorKind.NotInEnumeration:
                {
                    var allowed = string.Join(", ", error.Schema.Enumeration.Select(e => $"\"{e}\""));
                    return error.Schema.Enumeration.Count == 1
                        ? ($"{at}: must be {allowed}, got {Show(token)}", position)
                        : ($"{at}: {Show(token)} is not one of {allowed}", position);
                }
            case ValidationErrorKind.PatternMismatch:
                return ($"{at}: {Show(token)} does not match {Explain(error.Schema)}", position);
            case ValidationErrorKind.NotAnyOf:
                return ($"{at}: {Show(token)} is not a string, number, boolean or null", position);
            case ValidationErrorKind.NumberTooBig:
                return ($"{at}: {Show(token)} is above the maximum {error.Schema.Maximum}", position);
            case ValidationErrorKind.NumberTooSmall:
                return ($"{at}: {Show(token)} is below the minimum {error.Schema.Minimum}", position);
            case ValidationErrorKind.StringTooShort:
                return ($"{at}: must not be empty", position);
            case ValidationErrorKind.TooFewItems:
                return ($"{at}: needs at least {error.Schema.MinItems} item(s)", position);
            case ValidationErrorKind.TooFewProperties or ValidationErrorKind.TooManyProperties:
                return ($"{at}: give exactly one of: {string.Join(", ", error.Schema.Properties.Keys)}", position);
            default:
                if (error.Kind.ToString().EndsWith("Expected", StringComparison.Ordinal))
                {
                    var expected = DescribeType(error.Schema);
                    return ($"{at}: expected {expected}, got {KindOf(token)} {Show(token)}", position);
                }
                return ($"{at}: {error.Kind}", position);
        }
    }

    private static string Explain(JsonSchema schema) => schema.Pattern switch
    {
        "^/" => "an absolute path (starting with /)",
        "^[0-9]+(ms|s|min|h|d)$" => "a duration such as 30s, 5min or 1h",
        var p => $"the pattern {p}",
    };

    private static string DescribeType(JsonSchema schema)
    {
        var names = new List<string>();
        foreach (var flag in new[] { JsonObjectType.String, JsonObjectType.Integer, JsonObjectType.Number, JsonObjectType.Boolean, JsonObjectType.Object, JsonObjectType.Array, JsonObjectType.Null })
        {
            if (schema.Type.HasFlag(flag))
            {
                names.Add(flag == JsonObjectType.Object ? "a mapping" : flag == JsonObjectType.Array ? "a list" : flag.ToString().ToLowerInvariant());
            }
        }
        return names.Count == 0 ? "another type" : string.Join(" or ", names);
    }

    private static string KindOf(JToken? token) => token?.Type switch
    {
        JTokenType.Object => "a mapping",
        JTokenType.Array => "a list",
        JTokenType.Integer => "integer",
        JTokenType.Float => "number",
        JTokenType.Boolean => "boolean",
        JTokenType.Null => "null",
        _ => "string",
    };

    private static string Show(JToken? token) => token switch
    {
        null => "(nothing)",
        JValue { Type: JTokenType.String } v => $"\"{v.Value}\"",
        JValue { Type: JTokenType.Null } => "null",
        JValue v => Convert.ToString(v.Value, System.Globalization.CultureInfo.InvariantCulture) is { } s && v.Type == JTokenType.Boolean ? s.ToLowerInvariant() : Convert.ToString(v.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
        JObject => "a mapping",
        JArray => "a list",
        _ => token.ToString(),
    };
}
