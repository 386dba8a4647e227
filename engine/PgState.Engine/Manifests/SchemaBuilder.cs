using Newtonsoft.Json.Linq;
using NJsonSchema;

namespace PgState.Engine.Manifests;

/// <summary>
/// Builds NJsonSchema's object model straight from schemas/pgstate.schema.json. NJsonSchema's own
/// loader deserialises through Newtonsoft reflection, which costs ~200 ms of warm-up in every
/// short-lived pgstate process; this reads the same file in a few milliseconds. It knows the
/// keywords our schema uses and refuses any other, so it cannot silently drop a rule; a test
/// checks it validates exactly like JsonSchema.FromJsonAsync.
/// </summary>
internal static class SchemaBuilder
{
    private static readonly HashSet<string> Annotations = ["$schema", "$id", "title", "description", "default", "examples"];

    public static JsonSchema Build(string json)
    {
        var root = JObject.Parse(json);
        var rootSchema = new JsonSchema();
        var definitions = new Dictionary<string, JsonSchema>(StringComparer.Ordinal);
        if (root["definitions"] is JObject defs)
        {
            foreach (var p in defs.Properties())
            {
                definitions[p.Name] = new JsonSchema();
            }
            foreach (var p in defs.Properties())
            {
                Fill(definitions[p.Name], (JObject)p.Value, definitions);
                rootSchema.Definitions[p.Name] = definitions[p.Name];
            }
        }
        Fill(rootSchema, root, definitions, isRoot: true);
        return rootSchema;
    }

    private static T Create<T>(JObject node, Dictionary<string, JsonSchema> definitions)
        where T : JsonSchema, new()
    {
        var schema = new T();
        Fill(schema, node, definitions);
        return schema;
    }

    private static void Fill(JsonSchema schema, JObject node, Dictionary<string, JsonSchema> definitions, bool isRoot = false)
    {
        foreach (var p in node.Properties())
        {
            switch (p.Name)
            {
                case var a when Annotations.Contains(a):
                    break;
                case "definitions" when isRoot:
                    break;
                case "$ref":
                    var name = ((string)p.Value!).Replace("#/definitions/", "", StringComparison.Ordinal);
                    schema.Reference = definitions.TryGetValue(name, out var target) ? target : throw Unsupported($"$ref {p.Value}");
                    break;
                case "type":
                    schema.Type = p.Value is JArray types
                        ? types.Select(t => TypeOf((string)t!)).Aggregate(JsonObjectType.None, (a, b) => a | b)
                        : TypeOf((string)p.Value!);
                    break;
                case "properties":
                    foreach (var prop in ((JObject)p.Value).Properties())
                    {
                        schema.Properties[prop.Name] = Create<JsonSchemaProperty>((JObject)prop.Value, definitions);
                    }
                    break;
                case "required":
                    foreach (var r in (JArray)p.Value)
                    {
                        schema.RequiredProperties.Add((string)r!);
                    }
                    break;
                case "additionalProperties":
                    if (p.Value.Type == JTokenType.Boolean)
                    {
                        schema.AllowAdditionalProperties = (bool)p.Value;
                    }
                    else
                    {
                        schema.AdditionalPropertiesSchema = Create<JsonSchema>((JObject)p.Value, definitions);
                    }
                    break;
                case "items":
                    schema.Item = Create<JsonSchema>((JObject)p.Value, definitions);
                    break;
                case "enum":
                    foreach (var v in (JArray)p.Value)
                    {
                        schema.Enumeration.Add(((JValue)v).Value);
                    }
                    break;
                case "pattern":
                    schema.Pattern = (string)p.Value!;
                    break;
                case "minimum":
                    schema.Minimum = (decimal)p.Value;
                    break;
                case "maximum":
                    schema.Maximum = (decimal)p.Value;
                    break;
                case "minLength":
                    schema.MinLength = (int)p.Value;
                    break;
                case "maxLength":
                    schema.MaxLength = (int)p.Value;
                    break;
                case "minItems":
                    schema.MinItems = (int)p.Value;
                    break;
                case "minProperties":
                    schema.MinProperties = (int)p.Value;
                    break;
                case "maxProperties":
                    schema.MaxProperties = (int)p.Value;
                    break;
                case "anyOf":
                    foreach (var s in (JArray)p.Value)
                    {
                        schema.AnyOf.Add(Create<JsonSchema>((JObject)s, definitions));
                    }
                    break;
                default:
                    throw Unsupported($"keyword '{p.Name}' at {p.Path}");
            }
        }
    }

    private static JsonObjectType TypeOf(string name) => name switch
    {
        "object" => JsonObjectType.Object,
        "array" => JsonObjectType.Array,
        "string" => JsonObjectType.String,
        "integer" => JsonObjectType.Integer,
        "number" => JsonObjectType.Number,
        "boolean" => JsonObjectType.Boolean,
        "null" => JsonObjectType.Null,
        _ => throw Unsupported($"type '{name}'"),
    };

    private static NotSupportedException Unsupported(string what) =>
        new($"schemas/pgstate.schema.json uses {what}, which SchemaBuilder does not know: teach it, do not drop the rule");
}
