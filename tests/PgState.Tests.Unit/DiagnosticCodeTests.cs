using System.Reflection;
using System.Text.RegularExpressions;
using PgState.Engine.Diagnostics;

namespace PgState.Tests.Unit;

/// <summary>One code, one meaning: every code is declared once, in DiagnosticCodes, and written nowhere else.</summary>
public partial class DiagnosticCodeTests
{
    private static IReadOnlyList<DiagnosticCode> Declared() =>
        [.. typeof(DiagnosticCodes).GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (DiagnosticCode)f.GetValue(null)!)];

    [Fact]
    public void No_code_is_declared_twice_and_each_has_a_meaning()
    {
        var codes = Declared();
        Assert.True(codes.Count > 40);
        Assert.Equal(codes.Count, codes.Select(c => c.Id).Distinct().Count());
        Assert.Equal(codes.Count, codes.Select(c => c.Meaning).Distinct().Count());
        Assert.All(codes, c => Assert.Matches("^PGS[0-9]{3}$", c.Id));
    }

    [Fact]
    public void No_product_source_writes_a_code_outside_the_registry()
    {
        var offenders = new List<string>();
        foreach (var root in new[] { "engine", "modules" })
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(TestData.RepositoryRoot, root), "*.cs", SearchOption.AllDirectories))
            {
                if (file.Contains("/obj/", StringComparison.Ordinal) || file.EndsWith("DiagnosticCodes.cs", StringComparison.Ordinal))
                {
                    continue;
                }
                offenders.AddRange(CodeLiteral().Matches(File.ReadAllText(file)).Select(m => $"{Path.GetRelativePath(TestData.RepositoryRoot, file)}: {m.Value}"));
            }
        }
        Assert.Empty(offenders);
    }

    [GeneratedRegex("PGS[0-9]{3}")]
    private static partial Regex CodeLiteral();
}
