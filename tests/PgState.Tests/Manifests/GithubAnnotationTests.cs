using System.Text.RegularExpressions;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Manifests;

/// <summary>validate --format github in a CI job without secrets: a missing secret is a positioned warning, and every annotation has a file, line and column.</summary>
[Collection(SharedClusterA.Name)]
public partial class GithubAnnotationTests(ClusterFixture fixture) : IAsyncLifetime
{
    public Task InitializeAsync() => fixture.BeginAsync(GetType());

    public Task DisposeAsync() => Task.CompletedTask;

    [GeneratedRegex(@"^::(error|warning) file=[^,:]+,line=[1-9][0-9]*,col=[1-9][0-9]*::.+ \[PGS[0-9]+\]$")]
    private static partial Regex Positioned();

    private static IReadOnlyList<string> Annotations(string stdout) => [.. stdout.Split('\n').Where(l => l.StartsWith("::", StringComparison.Ordinal))];

    [Fact]
    public async Task A_missing_secret_is_a_positioned_warning_unless_require_secrets()
    {
        using var dir = new TempDir();
        var file = dir.Write("secret.yaml", fixture.Cluster.Manifest("db", "  roles:\n    - {name: backup_user, login: true, password: {fromEnv: PG_ANNOTATION_TEST_PASSWORD}}"));
        var ci = await CliRunner.RunAsync("validate", "--format", "github", "--offline", file);
        Assert.True(ci.ExitCode == 0, ci.ToString());
        var warning = Assert.Single(Annotations(ci.Stdout));
        Assert.Matches(Positioned(), warning);
        Assert.StartsWith("::warning file=", warning);
        Assert.Contains("line=9,col=", warning);

        var strict = await CliRunner.RunAsync("validate", "--format", "github", "--offline", "--require-secrets", file);
        Assert.Equal(1, strict.ExitCode);
        Assert.StartsWith("::error file=", Assert.Single(Annotations(strict.Stdout)));
    }

    [Fact]
    public async Task Every_annotation_of_every_stage_carries_a_position()
    {
        using var dir = new TempDir();
        var files = new[]
        {
            dir.Write("schema.yaml", fixture.Cluster.Manifest("a", "  archiving: {method: scp}\n  hba:\n    rules:\n      - {type: host, database: all, user: all, method: peer}")),
            dir.Write("live.yaml", fixture.Cluster.Manifest("b", "  settings:\n    no_such_parameter: 1\n    work_mem: lots\n    max_connections: -5\n  roles:\n    - {name: r, password: {fromFile: /nonexistent/secret}}")),
            dir.Write("twice.yaml", fixture.Cluster.Manifest("c", "") + "\n---\n" + fixture.Cluster.Manifest("c", "")),
        };
        foreach (var file in files)
        {
            var result = await CliRunner.RunAsync("validate", "--format", "github", file);
            var annotations = Annotations(result.Stdout);
            Assert.True(annotations.Count > 0, result.ToString());
            Assert.All(annotations, a => Assert.Matches(Positioned(), a));
        }
    }
}
