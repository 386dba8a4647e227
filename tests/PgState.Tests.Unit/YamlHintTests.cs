using PgState.Engine.Diagnostics;
using PgState.Engine.Manifests;

namespace PgState.Tests.Unit;

/// <summary>${env:…} inside a {…} flow mapping breaks the YAML; the error says how to write it instead.</summary>
public class YamlHintTests
{
    private static DiagnosticBag Read(string yaml)
    {
        var diagnostics = new DiagnosticBag();
        new YamlTreeReader("m.yaml", _ => "x", diagnostics).Read(yaml);
        return diagnostics;
    }

    [Fact]
    public void Env_reference_in_a_flow_mapping_gets_a_hint_to_quote_it_or_use_block_style()
    {
        var error = Assert.Single(Read("spec:\n  connection: {host: ${env:H}, port: 5432}\n").Items);
        Assert.Equal(Severity.Error, error.Severity);
        Assert.StartsWith("YAML syntax error: ", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("(hint: a ${env:…} value inside a {…} flow mapping must be quoted, \"${env:NAME}\", or written in block style)", error.Message, StringComparison.Ordinal);
        Assert.Equal(2, error.Position!.Line);
    }

    [Fact]
    public void Quoted_env_reference_reads_and_other_syntax_errors_get_no_hint()
    {
        Assert.Empty(Read("spec:\n  connection: {host: \"${env:H}\", port: 5432}\n").Items);
        var error = Assert.Single(Read("spec:\n  connection: {host: /tmp, port: [5432}\n").Items);
        Assert.DoesNotContain("hint", error.Message, StringComparison.Ordinal);
    }
}
