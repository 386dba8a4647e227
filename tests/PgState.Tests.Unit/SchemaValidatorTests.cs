using Newtonsoft.Json.Linq;
using NJsonSchema;
using NJsonSchema.Validation;
using PgState.Engine.Diagnostics;
using PgState.Engine.Manifests;

namespace PgState.Tests.Unit;

/// <summary>
/// pgstate validates manifests with its own small JSON Schema validator (no Newtonsoft reflection, so
/// it runs under Native AOT). These tests prove it finds exactly the problems NJsonSchema finds, on
/// the examples and on a corpus of broken documents, except where NJsonSchema is wrong about
/// JSON Schema's meaning ("$" before a final newline), which has its own test.
/// </summary>
public class SchemaValidatorTests
{
    private static readonly JsonSchema Reference = JsonSchema.FromJsonAsync(ManifestSchema.Text).GetAwaiter().GetResult();

    private const string Head = "apiVersion: pgstate/v1\nkind: PostgresHost\nmetadata: {name: x}\n";

    public static TheoryData<string> Documents()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(Path.Combine(TestData.RepositoryRoot, "examples"), "*.yaml").Order(StringComparer.Ordinal))
        {
            data.Add(File.ReadAllText(file));
        }
        foreach (var body in new[]
        {
            "spec: {}",
            "spec: {connection: {port: '5432'}}",
            "spec: {connection: {port: 70000, password: {fromEnv: A, fromFile: /b}}}",
            "spec: {connection: {}, restart: {policy: sometimes, command: []}}",
            "spec: {connection: {}, restart: {timeout: 5 minutes}}",
            "spec: {connection: {}, archiving: {walLevel: archive, mode: true, destination: rel}}",
            "spec: {connection: {}, settings: {a: [1], b: {c: 1}, d: null}}",
            "spec: {connection: {}, dataDirectory: 5, extra: 1}",
            "spec: {connection: {user: ''}, hba: {mode: all, rules: [{type: host, database: [], user: '', method: md6, options: {map: [1]}}]}}",
            "spec: {connection: {}, directories: [{path: x, mode: '999'}, {owner: ''}], selinux: {fileContexts: [{path: a, type: bad}], relabel: [rel]}}",
            "spec: {connection: {}, roles: [{name: '', connectionLimit: -2, password: {}}, {login: yes}], slots: [{name: Bad-Name, type: other}]}",
            "spec: {connection: {}, backups: [{name: Nightly, schedule: '', destination: rel, retention: {count: 0, maxAge: 1y}, compression: zip}]}",
            "spec: {connection: {}, checks: {archiveFreeSpaceWarn: 101, walFreeSpaceWarn: -1, expectedStandbys: [''], backupMaxAge: soon}}",
            "spec: {connection: {}, slotRetentionWarn: 10 GB, slotsPrune: 'yes', backupScheduling: {unitDirectory: etc}}",
        })
        {
            data.Add(Head + body);
        }
        data.Add("apiVersion: v2\nkind: Other\nmetadata: 1\nspec: []\nfoo: bar");
        data.Add("metadata: {name: 'bad name!', labels: {a: 1}}\nspec: {connection: {connectTimeout: 0}}");
        return data;
    }

    private static YamlNode Parse(string yaml)
    {
        var diagnostics = new DiagnosticBag();
        var root = new YamlTreeReader("t.yaml", _ => "x", diagnostics).Read(yaml).Single().Root!;
        Assert.False(diagnostics.HasErrors, string.Join("\n", diagnostics.Items));
        return root;
    }

    private static JToken ToJson(YamlNode node) => node switch
    {
        YamlMapping m => new JObject(m.Values.Select(v => new JProperty(v.Key!, ToJson(v)))),
        YamlSequence s => new JArray(s.Items.Select(ToJson)),
        YamlScalar { Kind: ScalarKind.Null } => JValue.CreateNull(),
        YamlScalar { Kind: ScalarKind.Boolean } b => new JValue(b.AsBoolean!.Value),
        YamlScalar { Kind: ScalarKind.Integer } i => i.TryGetInt64(out var l) ? new JValue(l) : new JValue(i.AsDecimal),
        YamlScalar { Kind: ScalarKind.Float } f => new JValue(f.AsDouble!.Value),
        YamlScalar s => new JValue(s.Text),
        _ => throw new InvalidOperationException(),
    };

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

    private static string Kind(ValidationErrorKind kind) => kind switch
    {
        ValidationErrorKind.NotInEnumeration => "enum",
        ValidationErrorKind.PatternMismatch => "pattern",
        ValidationErrorKind.PropertyRequired => "required",
        ValidationErrorKind.NoAdditionalPropertiesAllowed => "additional",
        ValidationErrorKind.NumberTooSmall => "minimum",
        ValidationErrorKind.NumberTooBig => "maximum",
        ValidationErrorKind.StringTooShort => "minLength",
        ValidationErrorKind.StringTooLong => "maxLength",
        ValidationErrorKind.TooFewItems => "minItems",
        ValidationErrorKind.TooManyItems => "maxItems",
        ValidationErrorKind.TooFewProperties or ValidationErrorKind.TooManyProperties => "properties",
        ValidationErrorKind.NotAnyOf => "anyOf",
        _ => "type",
    };

    private static string Subject(ValidationError e)
    {
        var path = (e.Path ?? "").TrimStart('#').TrimStart('/');
        if (e.Kind == ValidationErrorKind.PropertyRequired && e.Property is { } p && !path.EndsWith(p, StringComparison.Ordinal))
        {
            path = path.Length == 0 ? p : path + "." + p;
        }
        return path;
    }

    /// <summary>
    /// The same places are wrong, for the same reasons. Two deviations of NJsonSchema are allowed for:
    /// it checks "required" on a value that is not a mapping (JSON Schema applies it to objects only,
    /// and the wrong type is reported either way), and for a value of several allowed types it says
    /// "no type validates" where the value has a right type but breaks minItems/minLength.
    /// </summary>
    [Theory]
    [MemberData(nameof(Documents))]
    public void Finds_the_same_problems_as_NJsonSchema(string yaml)
    {
        var root = Parse(yaml);
        var actual = ManifestSchema.Errors(root).Select(e => (e.Kind, e.Subject)).ToHashSet();
        var typeErrors = actual.Where(e => e.Kind == "type").Select(e => e.Subject).ToHashSet();
        var expected = Flatten(Reference.Validate(ToJson(root))).Select(e => (Kind: Kind(e.Kind), Subject: Subject(e)))
            .Where(e => !(e.Kind == "required" && typeErrors.Contains(Parent(e.Subject))))
            .ToHashSet();
        Assert.Equal(expected.Select(e => e.Subject).Order(StringComparer.Ordinal).Distinct(), actual.Select(e => e.Subject).Order(StringComparer.Ordinal).Distinct());
        foreach (var e in expected.Where(e => e.Kind != "type"))
        {
            Assert.Contains(e, actual);
        }
        foreach (var e in actual.Where(e => e.Kind is not ("minItems" or "minLength")))
        {
            Assert.Contains(e, expected);
        }
    }

    private static string Parent(string path) => path.LastIndexOf('.') is var i and > 0 ? path[..i] : path.Contains('.') ? "" : "";

    [Fact]
    public void Corpus_covers_errors_of_every_kind_as_well_as_valid_manifests()
    {
        var kinds = new HashSet<string>();
        var valid = 0;
        foreach (var row in Documents())
        {
            var errors = ManifestSchema.Errors(Parse(row));
            valid += errors.Count == 0 ? 1 : 0;
            kinds.UnionWith(errors.Select(e => e.Kind));
        }
        Assert.True(valid >= 5, $"only {valid} valid documents");
        Assert.Superset(new HashSet<string> { "type", "enum", "pattern", "required", "additional", "minimum", "maximum", "minLength", "minItems", "properties" }, kinds);
    }

    [Theory]
    [InlineData("spec: {connection: {}, directories: [{path: /a, mode: \"0700\\n\"}]}", "spec.directories[0].mode")]
    [InlineData("metadata: {name: \"n84\\n\"}\nspec: {connection: {}}", "metadata.name")]
    [InlineData("spec: {connection: {}, slots: [{name: \"s1\\n\"}]}", "spec.slots[0].name")]
    [InlineData("spec: {connection: {}, archiving: {stanza: \"main\\n\"}}", "spec.archiving.stanza")]
    [InlineData("spec: {connection: {}, selinux: {fileContexts: [{path: /a, type: \"x_t\\n\"}]}}", "spec.selinux.fileContexts[0].type")]
    public void A_pattern_anchored_with_dollar_refuses_a_trailing_newline_as_json_schema_means_it(string body, string path)
    {
        var yaml = (body.StartsWith("metadata", StringComparison.Ordinal) ? "apiVersion: pgstate/v1\nkind: PostgresHost\n" : Head) + body;
        Assert.Contains(ManifestSchema.Errors(Parse(yaml)), e => e.Kind == "pattern" && e.Subject == path);
    }

    [Fact]
    public void Ecma_regexes_read_digits_and_word_characters_as_ascii()
    {
        Assert.DoesNotMatch(ManifestSchema.EcmaRegex("^\\d+$"), "\u0663");
        Assert.DoesNotMatch(ManifestSchema.EcmaRegex("^a$"), "a\n");
        Assert.Matches(ManifestSchema.EcmaRegex("^[$]a$"), "$a");
    }

    [Fact]
    public void Defaults_come_from_the_schema_and_are_marked_as_defaults()
    {
        var root = Parse(Head + "spec: {connection: {}, hba: {rules: []}}");
        ManifestSchema.Validate(root, new DiagnosticBag());
        var hba = ((YamlMapping)root).Mapping("spec").Mapping("hba");
        Assert.Equal("authoritative", hba.String("mode"));
        Assert.True(hba!["mode"]!.IsDefault);
        Assert.Equal(5432, ((YamlMapping)root).Mapping("spec").Mapping("connection").Int32("port", new DiagnosticBag()));
    }

    [Fact]
    public void Unknown_keyword_is_refused_not_dropped()
    {
        var error = Assert.Throws<NotSupportedException>(() => ManifestSchema.Load("""{"type": "object", "oneOf": []}"""));
        Assert.Contains("oneOf", error.Message);
    }
}
