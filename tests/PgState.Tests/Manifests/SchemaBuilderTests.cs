using Newtonsoft.Json.Linq;
using NJsonSchema;
using PgState.Engine.Diagnostics;
using PgState.Engine.Manifests;
using PgState.Tests.Snapshots;

namespace PgState.Tests.Manifests;

/// <summary>The fast schema builder must validate exactly like NJsonSchema's own loader.</summary>
public class SchemaBuilderTests
{
    private static readonly JsonSchema Reference = JsonSchema.FromJsonAsync(ManifestSchema.Text).GetAwaiter().GetResult();
    private static readonly JsonSchema Built = SchemaBuilder.Build(ManifestSchema.Text);

    public static TheoryData<string> Documents()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(Path.Combine(ExamplePlanSnapshotTests.RepositoryRoot, "examples"), "*.yaml"))
        {
            data.Add(File.ReadAllText(file));
        }
        const string head = "apiVersion: pgstate/v1\nkind: PostgresHost\nmetadata: {name: x}\n";
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
            "metadata: {name: 'bad name!'}\nspec: {connection: {user: ''}}",
        })
        {
            data.Add(head + body);
        }
        data.Add("apiVersion: v2\nkind: Other\nmetadata: 1\nspec: []\nfoo: bar");
        return data;
    }

    [Theory]
    [MemberData(nameof(Documents))]
    public void Built_schema_reports_the_same_problems_as_NJsonSchema(string yaml)
    {
        var diagnostics = new DiagnosticBag();
        var root = new YamlTreeReader("t.yaml", _ => "x", diagnostics).Read(yaml).Single().Root!;
        var fallback = new SourcePosition("t.yaml", 1, 1);
        var expected = ManifestSchema.ValidateWith(Reference, root, fallback).Sorted().Select(d => d.ToString()).ToList();
        var actual = ManifestSchema.ValidateWith(Built, root, fallback).Sorted().Select(d => d.ToString()).ToList();
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Unknown_keyword_is_refused_not_dropped()
    {
        var error = Assert.Throws<NotSupportedException>(() => SchemaBuilder.Build("""{"type": "object", "oneOf": []}"""));
        Assert.Contains("oneOf", error.Message);
    }

    [Fact]
    public void Documents_cover_errors_as_well_as_valid_manifests()
    {
        var withErrors = 0;
        foreach (var row in Documents())
        {
            var diagnostics = new DiagnosticBag();
            var root = new YamlTreeReader("t.yaml", _ => "x", diagnostics).Read(row).Single().Root!;
            withErrors += Reference.Validate(root).Count > 0 ? 1 : 0;
        }
        Assert.True(withErrors >= 10, $"only {withErrors} documents have schema errors");
    }
}
