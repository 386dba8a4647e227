using PgState.Tests.Infrastructure;

namespace PgState.Tests.Archiving;

/// <summary>A value set on the server's command line cannot be changed by ALTER SYSTEM: the plan says so once, instead of re-issuing it.</summary>
public abstract class OverriddenTests : IAsyncLifetime
{
    public sealed class Pg13 : OverriddenTests
    {
        protected override int Major => 13;
    }

    public sealed class Pg14 : OverriddenTests
    {
        protected override int Major => 14;
    }

    public sealed class Pg15 : OverriddenTests
    {
        protected override int Major => 15;
    }

    public sealed class Pg16 : OverriddenTests
    {
        protected override int Major => 16;
    }

    public sealed class Pg17 : OverriddenTests
    {
        protected override int Major => 17;
    }

    public sealed class Pg18 : OverriddenTests
    {
        protected override int Major => 18;
    }

    private ScratchCluster _cluster = null!;

    protected abstract int Major { get; }

    public async Task InitializeAsync() => _cluster = await ScratchCluster.StartAsync(Major, "archive_timeout=60");

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

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
