using PgState.Tests.Infrastructure;

namespace PgState.Tests.Checks;

/// <summary>What nightly jobs and people read when something is not there: a skipped check, a server that is not listening.</summary>
public class ReportingTests(ClusterFixture fixture) : IClassFixture<ClusterFixture>
{
    private readonly ScratchCluster _cluster = fixture.Cluster;

    [Fact]
    public async Task Drift_metrics_give_a_skipped_check_minus_one_not_ok()
    {
        using var dir = new TempDir();
        var file = dir.Write("m.yaml", _cluster.Manifest("db", "  settings: {}"));
        var metrics = Path.Combine(dir.Path, "pgstate.prom");
        var drift = await CliRunner.RunAsync("drift", "--metrics", metrics, file);
        Assert.True(drift.ExitCode is 0 or 2, drift.ToString());
        Assert.Contains("SKIPPED archiver", drift.Stdout);   // archive_mode is off on a fresh cluster
        var text = File.ReadAllText(metrics);
        Assert.Contains("# HELP pgstate_check_status Health check status: 0 ok, 1 warn, 2 fail, -1 skipped", text);
        Assert.Contains("pgstate_check_status{host=\"db\",check=\"archiver\"} -1\n", text);
        Assert.Contains("pgstate_check_status{host=\"db\",check=\"pg_wal\"} 0\n", text);
    }

    [Fact]
    public async Task A_missing_socket_directory_or_socket_is_named_with_what_to_check()
    {
        using var dir = new TempDir();
        var missingDirectory = dir.Write("a.yaml", _cluster.Manifest("a", "  settings: {}").Replace(_cluster.SocketDirectory + ",", dir.Path + "/nosuch,", StringComparison.Ordinal));
        var noServer = dir.Write("b.yaml", _cluster.Manifest("b", "  settings: {}").Replace(_cluster.SocketDirectory + ",", dir.Path + ",", StringComparison.Ordinal));
        var a = await CliRunner.RunAsync("plan", missingDirectory);
        Assert.Equal(1, a.ExitCode);
        Assert.Contains($"the socket directory {dir.Path}/nosuch does not exist (is spec.connection.host right?)", a.Stderr);
        var b = await CliRunner.RunAsync("plan", noServer);
        Assert.Equal(1, b.ExitCode);
        Assert.Contains($"no server is listening on the Unix socket {dir.Path}/.s.PGSQL.{_cluster.Port} (is PostgreSQL running, on port {_cluster.Port}?)", b.Stderr);
        Assert.DoesNotContain("Cannot assign requested address", a.Stderr + b.Stderr);
    }
}
