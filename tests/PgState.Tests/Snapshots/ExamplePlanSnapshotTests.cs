using System.Text.RegularExpressions;
using PgState.Tests.Infrastructure;
using Snapshooter;
using Snapshooter.Xunit;

namespace PgState.Tests.Snapshots;

/// <summary>
/// Golden renderings (text, markdown, JSON) of the plan of every manifest in examples/ against a
/// fresh cluster. Temporary paths, the port and the fingerprint are scrubbed before comparing.
/// A mismatch is written under __mismatch__/; review it like code, then replace the baseline.
/// </summary>
[Collection(SharedClusterA.Name)]
public partial class ExamplePlanSnapshotTests(ClusterFixture fixture) : IAsyncLifetime
{
    private readonly ScratchCluster _cluster = fixture.Cluster;

    public Task InitializeAsync() => fixture.BeginAsync(GetType());

    Task IAsyncLifetime.DisposeAsync() => Task.CompletedTask;

    public static string RepositoryRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "PgState.sln")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new InvalidOperationException("PgState.sln not found above the test binaries");
    }

    public static TheoryData<string, string> Examples()
    {
        var data = new TheoryData<string, string>();
        foreach (var file in Directory.GetFiles(Path.Combine(RepositoryRoot, "examples"), "*.yaml").Order(StringComparer.Ordinal))
        {
            foreach (var format in new[] { "text", "markdown", "json" })
            {
                data.Add(Path.GetFileName(file), format);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public async Task Example_plan_matches_its_baseline(string example, string format)
    {
        var env = new Dictionary<string, string>
        {
            ["PGSTATE_SANDBOX"] = _cluster.Root,
            ["PGSTATE_SANDBOX_PORT"] = _cluster.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["PG_BACKUP_PASSWORD"] = "example-password-not-shown",
            ["PGBACKREST_REPO1_CIPHER_PASS"] = "example-cipher-not-shown",
        };
        var result = await CliRunner.RunAsync(
            ["plan", "--format", format, "--pg-host", _cluster.SocketDirectory, "--pg-port", env["PGSTATE_SANDBOX_PORT"],
             Path.Combine(RepositoryRoot, "examples", example)], env);
        Assert.True(result.ExitCode is 0 or 2, result.ToString());
        var scrubbed = Fingerprint().Replace(result.Stdout.Replace(_cluster.Root, "<tmp>").Replace(CliRunner.HostRoot, "<host>").Replace(env["PGSTATE_SANDBOX_PORT"], "<port>"), "sha256:<fingerprint>");
        scrubbed = SystemIdentifier().Replace(scrubbed, "\"systemIdentifier\": \"<sysid>\"");
        scrubbed = ServerVersion().Replace(scrubbed, "\"version\": \"<version>\"");
        Snapshot.Match(scrubbed.Split('\n'), SnapshotNameExtension.Create(example.Replace(".yaml", ""), format));
    }

    [GeneratedRegex("sha256:[0-9a-f]{64}")]
    private static partial Regex Fingerprint();

    [GeneratedRegex("\"systemIdentifier\": \"[0-9]+\"")]
    private static partial Regex SystemIdentifier();

    [GeneratedRegex("\"version\": \"[^\"]+\"")]
    private static partial Regex ServerVersion();
}
