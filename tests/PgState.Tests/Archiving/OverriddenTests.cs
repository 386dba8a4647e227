using PgState.Tests.Infrastructure;

namespace PgState.Tests.Archiving;

/// <summary>A value set on the server's command line cannot be changed by ALTER SYSTEM: the plan says so once, instead of re-issuing it.</summary>
public abstract class OverriddenTests(ClusterFixture fixture)
{
    public sealed class Pg13(CommandLineClusterFixture<Major13> f) : OverriddenTests(f), IClassFixture<CommandLineClusterFixture<Major13>>;

    public sealed class Pg14(CommandLineClusterFixture<Major14> f) : OverriddenTests(f), IClassFixture<CommandLineClusterFixture<Major14>>;

    public sealed class Pg15(CommandLineClusterFixture<Major15> f) : OverriddenTests(f), IClassFixture<CommandLineClusterFixture<Major15>>;

    public sealed class Pg16(CommandLineClusterFixture<Major16> f) : OverriddenTests(f), IClassFixture<CommandLineClusterFixture<Major16>>;

    public sealed class Pg17(CommandLineClusterFixture<Major17> f) : OverriddenTests(f), IClassFixture<CommandLineClusterFixture<Major17>>;

    public sealed class Pg18(CommandLineClusterFixture<Major18> f) : OverriddenTests(f), IClassFixture<CommandLineClusterFixture<Major18>>;

    private readonly ScratchCluster _cluster = fixture.Cluster;

    [Fact]
    public async Task Command_line_setting_is_reported_as_overridden_and_not_changed()
    {
        using var dir = new TempDir();
        var file = dir.Write("o.yaml", _cluster.Manifest("db", "  settings:\n    archive_timeout: 5min"));
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 0, plan.ToString());
        Assert.Contains("settings.archive_timeout: overridden: set on the server's command line to \"1min\"", plan.Stdout);
        Assert.Contains("Plan: 0 to add, 0 to change, 0 to destroy.", plan.Stdout);

        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.Equal(0, apply.ExitCode);
        Assert.DoesNotContain("archive_timeout", _cluster.AutoConf);
    }
}
