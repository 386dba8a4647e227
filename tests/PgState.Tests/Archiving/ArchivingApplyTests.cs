using PgState.Modules.Archiving;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Archiving;

/// <summary>plan → apply → plan on a real server, for each archiving method.</summary>
[Collection(SharedClusterB.Name)]
public class ArchivingApplyTests(ClusterFixture fixture) : IAsyncLifetime
{
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

    [Fact]
    public async Task Apply_refuses_without_a_terminal_and_without_auto_approve()
    {
        var file = _dir.Write("confirm.yaml", _cluster.Manifest("db", "  settings:\n    archive_timeout: 11min"));
        var refused = await CliRunner.RunAsync(["apply", file]);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("refusing to apply without confirmation", refused.Stderr);
        Assert.Equal("0", await _cluster.ShowAsync("archive_timeout"));

        var declined = await CliRunner.RunAsync(["apply", file], input: "no\n", terminal: true);
        Assert.Equal(1, declined.ExitCode);
        Assert.Contains("Apply cancelled.", declined.Stderr);
        Assert.Equal("0", await _cluster.ShowAsync("archive_timeout"));

        var accepted = await CliRunner.RunAsync(["apply", file], input: "yes\n", terminal: true);
        Assert.True(accepted.ExitCode == 0, accepted.ToString());
        Assert.Contains("Only 'yes' will be accepted", accepted.Stderr);
        Assert.Equal("660", await _cluster.ShowAsync("archive_timeout"));
    }

    [Fact]
    public async Task Colour_only_on_a_terminal_and_never_with_NO_COLOR()
    {
        var file = _dir.Write("colour.yaml", _cluster.Manifest("db", "  settings:\n    archive_timeout: 12min"));
        var piped = await CliRunner.RunAsync(["plan", file]);
        Assert.DoesNotContain("\u001b[", piped.Stdout);
        var terminal = await CliRunner.RunAsync(["plan", file], terminal: true);
        Assert.Contains("\u001b[", terminal.Stdout);
        var noColour = await CliRunner.RunAsync(["plan", file], new Dictionary<string, string> { ["NO_COLOR"] = "1" }, terminal: true);
        Assert.DoesNotContain("\u001b[", noColour.Stdout);
    }

    [Fact]
    public async Task Json_plan_has_format_version_fingerprint_and_one_entry_per_change()
    {
        var file = _dir.Write("json.yaml", _cluster.Manifest("db", "  archiving:\n    mode: \"on\"\n    timeout: 1min"));
        var outFile = Path.Combine(_dir.Path, "plan.json");
        var plan = await CliRunner.RunAsync("plan", "--format", "json", "--out", outFile, file);
        Assert.Equal(2, plan.ExitCode);
        using var json = System.Text.Json.JsonDocument.Parse(plan.Stdout);
        Assert.Equal(2, json.RootElement.GetProperty("formatVersion").GetInt32());
        var hostPlan = json.RootElement.GetProperty("plans")[0];
        Assert.StartsWith("sha256:", hostPlan.GetProperty("fingerprint").GetString());
        var changes = hostPlan.GetProperty("changes").EnumerateArray().ToList();
        Assert.Equal(2, changes.Count);
        var mode = changes.Single(c => c.GetProperty("address").GetString() == "settings.archive_mode");
        Assert.Equal("update", mode.GetProperty("action").GetString());
        Assert.Equal("off", mode.GetProperty("before").GetString());
        Assert.Equal("on", mode.GetProperty("after").GetString());
        Assert.Equal("restart", mode.GetProperty("activation").GetString());
        using var saved = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(outFile));
        Assert.Equal(file, saved.RootElement.GetProperty("manifests")[0].GetProperty("path").GetString());
        Assert.StartsWith("sha256:", saved.RootElement.GetProperty("plans")[0].GetProperty("changes")[0].GetProperty("fingerprint").GetString());
    }
}
