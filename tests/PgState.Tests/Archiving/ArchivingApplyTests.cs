using PgState.Modules.Archiving;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Archiving;

/// <summary>plan → apply → plan on a real server of every major, for each archiving method; units, pending reload, reset.</summary>
public abstract class ArchivingApplyTests(ClusterFixture fixture) : IAsyncLifetime
{
    [Collection(Majors.Pg13)]
    public sealed class Pg13(ClusterFixture<Major13> f) : ArchivingApplyTests(f);

    [Collection(Majors.Pg14)]
    public sealed class Pg14(ClusterFixture<Major14> f) : ArchivingApplyTests(f);

    [Collection(Majors.Pg15)]
    public sealed class Pg15(ClusterFixture<Major15> f) : ArchivingApplyTests(f);

    [Collection(Majors.Pg16)]
    public sealed class Pg16(ClusterFixture<Major16> f) : ArchivingApplyTests(f);

    [Collection(Majors.Pg17)]
    public sealed class Pg17(ClusterFixture<Major17> f) : ArchivingApplyTests(f);

    [Collection(Majors.Pg18)]
    public sealed class Pg18(ClusterFixture<Major18> f) : ArchivingApplyTests(f);

    private readonly ScratchCluster _cluster = fixture.Cluster;
    private readonly TempDir _dir = new();

    public async Task InitializeAsync()
    {
        await fixture.BeginAsync(GetType());
        await _cluster.ResetAsync();
    }

    public Task DisposeAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }

    public static TheoryData<string, string> Methods => new()
    {
        { "copy", "    method: copy\n    destination: /pg_archive_test" },
        { "pgbackrest", "    method: pgbackrest\n    stanza: main" },
        { "command", "    method: command\n    command: \"test ! -f /mnt/arch/%f && cp %p /mnt/arch/%f\"" },
    };

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task Plan_apply_plan_is_idempotent_for_each_method(string method, string methodYaml)
    {
        var file = _dir.Write($"{method}.yaml", _cluster.Manifest("db", $"  archiving:\n    walLevel: replica\n    mode: \"on\"\n{methodYaml}\n    timeout: 5min\n  settings:\n    max_wal_senders: 10", "allowed"));
        var expectedCommand = method switch
        {
            "copy" => ArchiveCommands.Copy("/pg_archive_test"),
            "pgbackrest" => "pgbackrest --stanza=main archive-push %p",
            _ => "test ! -f /mnt/arch/%f && cp %p /mnt/arch/%f",
        };

        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains("~ settings.archive_mode: \"off\" -> \"on\"  [restart required]", plan.Stdout);
        Assert.Contains("~ settings.archive_timeout: \"0\" -> \"5min\"  [reload]", plan.Stdout);
        Assert.Contains($"-> \"{expectedCommand.Replace("\"", "\\\"")}\"", plan.Stdout);
        Assert.DoesNotContain("settings.wal_level", plan.Stdout);        // replica is initdb's default: converged
        Assert.DoesNotContain("settings.max_wal_senders", plan.Stdout);  // 10 is the default too
        Assert.Contains("Plan: 0 to add, 3 to change, 0 to destroy.", plan.Stdout);
        Assert.Contains("1 change needs a PostgreSQL restart.", plan.Stdout);

        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.Contains("Apply complete! Resources: 0 added, 3 changed, 0 destroyed.", apply.Stdout);
        Assert.Contains("PostgreSQL was restarted", apply.Stdout);

        Assert.Equal("on", await _cluster.ShowAsync("archive_mode"));
        Assert.Equal("300", await _cluster.ShowAsync("archive_timeout"));
        Assert.Equal(expectedCommand, await _cluster.ShowAsync("archive_command"));

        var again = await CliRunner.RunAsync("plan", file);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("No changes. The host matches the manifest.", again.Stdout);
        Assert.Contains("Plan: 0 to add, 0 to change, 0 to destroy.", again.Stdout);

        var applyAgain = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.Equal(0, applyAgain.ExitCode);
        Assert.Contains("Nothing to apply", applyAgain.Stdout);
    }

    [Fact]
    public async Task Values_equal_in_another_unit_are_converged()
    {
        await _cluster.ExecAsync("ALTER SYSTEM SET archive_timeout = 300");
        await _cluster.ExecAsync("ALTER SYSTEM SET max_wal_size = '2048MB'");
        // Defaults from 15 (14 for the target) that older majors do not share: set them, in another spelling.
        await _cluster.ExecAsync("ALTER SYSTEM SET log_checkpoints = on");
        await _cluster.ExecAsync("ALTER SYSTEM SET checkpoint_completion_target = '0.90'");
        await _cluster.ExecAsync("select pg_reload_conf()");
        await Task.Delay(200);
        var file = _dir.Write("units.yaml", _cluster.Manifest("db", "  settings:\n    archive_timeout: 5min\n    max_wal_size: 2GB\n    log_checkpoints: true\n    checkpoint_completion_target: 0.9"));
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 0, plan.ToString());
    }

    [Fact]
    public async Task Written_but_not_reloaded_shows_as_pending_reload_and_apply_reloads()
    {
        await _cluster.ExecAsync("ALTER SYSTEM SET archive_timeout = '7min'");  // no reload
        var file = _dir.Write("pending.yaml", _cluster.Manifest("db", "  settings:\n    archive_timeout: 7min"));
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 2, plan.ToString());   // apply has something to do: reload
        Assert.Contains("settings.archive_timeout = \"7min\": reload pending", plan.Stdout);
        Assert.Contains("Plan: 0 to add, 0 to change, 0 to destroy.", plan.Stdout);

        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.Contains("configuration reloaded", apply.Stderr);
        Assert.Equal("420", await _cluster.ShowAsync("archive_timeout"));
        Assert.Equal(0, (await CliRunner.RunAsync("plan", file)).ExitCode);
    }

    [Fact]
    public async Task Null_setting_resets_it_from_auto_conf()
    {
        await _cluster.ExecAsync("ALTER SYSTEM SET archive_timeout = '9min'");
        await _cluster.ExecAsync("select pg_reload_conf()");
        var file = _dir.Write("reset.yaml", _cluster.Manifest("db", "  settings:\n    archive_timeout: null"));
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains("- settings.archive_timeout (was \"9min\")", plan.Stdout);
        Assert.Contains("Plan: 0 to add, 0 to change, 1 to destroy.", plan.Stdout);
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", file)).ExitCode);
        Assert.DoesNotContain("archive_timeout", _cluster.AutoConf);
        Assert.Equal("0", await _cluster.ShowAsync("archive_timeout"));
        Assert.Equal(0, (await CliRunner.RunAsync("plan", file)).ExitCode);
    }
}
