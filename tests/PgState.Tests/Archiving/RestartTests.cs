using PgState.Tests.Infrastructure;

namespace PgState.Tests.Archiving;

/// <summary>Restart-only settings on every major: pending under policy never, restarted under policy allowed.</summary>
public abstract class RestartTests(ClusterFixture fixture) : IAsyncLifetime
{
    [Collection(Majors.Pg13)]
    public sealed class Pg13(ClusterFixture<Major13> f) : RestartTests(f);

    [Collection(Majors.Pg14)]
    public sealed class Pg14(ClusterFixture<Major14> f) : RestartTests(f);

    [Collection(Majors.Pg15)]
    public sealed class Pg15(ClusterFixture<Major15> f) : RestartTests(f);

    [Collection(Majors.Pg16)]
    public sealed class Pg16(ClusterFixture<Major16> f) : RestartTests(f);

    [Collection(Majors.Pg17)]
    public sealed class Pg17(ClusterFixture<Major17> f) : RestartTests(f);

    [Collection(Majors.Pg18)]
    public sealed class Pg18(ClusterFixture<Major18> f) : RestartTests(f);

    private readonly ScratchCluster _cluster = fixture.Cluster;

    public Task InitializeAsync() => fixture.BeginAsync(GetType());

    Task IAsyncLifetime.DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Archive_mode_change_stays_pending_under_never_and_is_restarted_under_allowed()
    {
        using var dir = new TempDir();
        var never = dir.Write("never.yaml", _cluster.Manifest("db", "  archiving:\n    mode: \"on\"", "never"));

        var plan = await CliRunner.RunAsync("plan", never);
        Assert.Equal(2, plan.ExitCode);
        Assert.Contains("~ settings.archive_mode: \"off\" -> \"on\"  [restart required]", plan.Stdout);
        Assert.Contains("restart.policy is never, so it will stay pending", plan.Stdout);
        Assert.Contains("1 change needs a PostgreSQL restart.", plan.Stdout);

        var pid = await _cluster.ScalarAsync<int>("select pg_backend_pid()");
        var startTime = await _cluster.ScalarAsync<DateTime>("select pg_postmaster_start_time()");
        var apply = await CliRunner.RunAsync("apply", "--auto-approve", never);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.Contains("Pending: settings.archive_mode = \"on\": restart pending", apply.Stdout);
        Assert.Equal(startTime, await _cluster.ScalarAsync<DateTime>("select pg_postmaster_start_time()"));
        Assert.Equal("off", await _cluster.ShowAsync("archive_mode"));
        Assert.True(await _cluster.ScalarAsync<bool>("select pending_restart from pg_settings where name = 'archive_mode'"));

        // The next plan shows it as pending, not as a fresh difference; apply has nothing it may do.
        var pending = await CliRunner.RunAsync("plan", never);
        Assert.True(pending.ExitCode == 0, pending.ToString());
        Assert.DoesNotContain("~ settings.archive_mode", pending.Stdout);
        Assert.Contains("settings.archive_mode = \"on\": restart pending", pending.Stdout);
        Assert.Contains("restart.policy is never: restart PostgreSQL to activate it", pending.Stdout);
        Assert.Contains("Plan: 0 to add, 0 to change, 0 to destroy.", pending.Stdout);
        Assert.Contains("1 change needs a PostgreSQL restart.", pending.Stdout);

        // Same manifest with policy allowed: apply restarts and the host converges.
        var allowed = dir.Write("allowed.yaml", _cluster.Manifest("db", "  archiving:\n    mode: \"on\"", "allowed"));
        var planAllowed = await CliRunner.RunAsync("plan", allowed);
        Assert.Equal(2, planAllowed.ExitCode);
        var restart = await CliRunner.RunAsync("apply", "--auto-approve", allowed);
        Assert.True(restart.ExitCode == 0, restart.ToString());
        Assert.Contains("PostgreSQL was restarted", restart.Stdout);
        Assert.True(startTime < await _cluster.ScalarAsync<DateTime>("select pg_postmaster_start_time()"));
        Assert.Equal("on", await _cluster.ShowAsync("archive_mode"));

        var empty = await CliRunner.RunAsync("plan", allowed);
        Assert.True(empty.ExitCode == 0, empty.ToString());
        Assert.Contains("No changes.", empty.Stdout);
        Assert.DoesNotContain("pending", empty.Stdout);
        Assert.NotEqual(0, pid);
    }
}
