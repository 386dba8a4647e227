using System.Text.Json;
using PgState.Engine.Host;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Checks;

/// <summary>Health checks against a real, archiving server of every major: failures show, then recover.</summary>
public abstract class CheckTests(ClusterFixture fixture) : IAsyncLifetime
{
    [Collection(Majors.Pg13)]
    public sealed class Pg13(ClusterFixture<Major13> f) : CheckTests(f);

    [Collection(Majors.Pg14)]
    public sealed class Pg14(ClusterFixture<Major14> f) : CheckTests(f);

    [Collection(Majors.Pg15)]
    public sealed class Pg15(ClusterFixture<Major15> f) : CheckTests(f);

    [Collection(Majors.Pg16)]
    public sealed class Pg16(ClusterFixture<Major16> f) : CheckTests(f);

    [Collection(Majors.Pg17)]
    public sealed class Pg17(ClusterFixture<Major17> f) : CheckTests(f);

    [Collection(Majors.Pg18)]
    public sealed class Pg18(ClusterFixture<Major18> f) : CheckTests(f);

    private readonly ScratchCluster _cluster = fixture.Cluster;
    private readonly TempDir _dir = new();

    private string Archive => Path.Combine(_cluster.Root, "archive");

    public async Task InitializeAsync()
    {
        // Each test starts from a reset cluster, an empty archive and fresh archiver statistics.
        await fixture.BeginAsync(GetType());
        await _cluster.ResetAllAsync();
        if (Directory.Exists(Archive))
        {
            Directory.Delete(Archive, recursive: true);
        }
        Directory.CreateDirectory(Archive);
        await _cluster.ChownToServerAsync(Archive);
        await _cluster.ExecAsync("select pg_stat_reset_shared('archiver')");
    }

    public Task DisposeAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }

    private string Manifest(string extra = "") => _dir.Write("check.yaml", _cluster.Manifest("db",
        $"  archiving:\n    mode: \"on\"\n    method: copy\n    destination: {Archive}\n{extra}", "allowed"));

    private static List<(string Id, string Status, string Message)> Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return [.. doc.RootElement.GetProperty("hosts")[0].GetProperty("checks").EnumerateArray()
            .Select(c => (c.GetProperty("id").GetString()!, c.GetProperty("status").GetString()!, c.GetProperty("message").GetString()!))];
    }

    private async Task WaitAsync(string sql, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await _cluster.ScalarAsync<bool>(sql) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Archiver_fails_quoting_the_segment_and_recovers_once_the_directory_is_fixed()
    {
        var file = Manifest();
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", file)).ExitCode);
        Assert.Equal(0, (await CliRunner.RunAsync("check", file)).ExitCode);

        // The server's user may no longer write the archive: the next segment fails.
        await ProcessRunner.Default.RunAsync("chown", ["root:root", Archive]);
        File.SetUnixFileMode(Archive, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await _cluster.ExecAsync("create table if not exists w(x int); insert into w values (1)");
        var segment = await _cluster.ScalarAsync<string>("select pg_walfile_name(pg_switch_wal())");
        await WaitAsync("select failed_count > 0 from pg_stat_archiver");

        var failing = await CliRunner.RunAsync("check", "--format", "json", file);
        Assert.Equal(2, failing.ExitCode);
        var checks = Parse(failing.Stdout);
        var archiver = checks.Single(c => c.Id == "archiver");
        Assert.Equal("fail", archiver.Status);
        Assert.Contains($"archive_command failed for {segment}", archiver.Message);
        var destination = checks.Single(c => c.Id == "archive_destination");
        Assert.Equal("fail", destination.Status);
        Assert.Contains("owned by root, not by the server's user postgres", destination.Message);
        Assert.Contains("not writable by postgres", destination.Message);

        await _cluster.ChownToServerAsync(Archive);
        await _cluster.ExecAsync("insert into w values (2); select pg_switch_wal()");
        await WaitAsync("select coalesce(last_archived_time > last_failed_time, false) from pg_stat_archiver", 90);
        var recovered = await CliRunner.RunAsync("check", "--format", "json", file);
        Assert.True(recovered.ExitCode == 0, recovered.ToString());
        Assert.Equal("ok", Parse(recovered.Stdout).Single(c => c.Id == "archiver").Status);
    }

    [Fact]
    public async Task Probe_passes_on_a_working_archive_and_fails_within_its_bound_on_a_broken_one()
    {
        var file = Manifest();
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", file)).ExitCode);
        var ok = await CliRunner.RunAsync("check", "--probe-archive", "--format", "json", file);
        Assert.True(ok.ExitCode == 0, ok.ToString());
        Assert.Contains("reached", Parse(ok.Stdout).Single(c => c.Id == "archive_probe").Message);

        var broken = _dir.Write("broken.yaml", _cluster.Manifest("db",
            $"  archiving:\n    mode: \"on\"\n    method: copy\n    destination: {Path.Combine(_cluster.Root, "nowhere")}\n", "allowed"));
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", broken)).ExitCode);
        var started = DateTime.UtcNow;
        var failed = await CliRunner.RunAsync("check", "--probe-archive", "--probe-timeout", "3s", "--format", "json", broken);
        Assert.Equal(2, failed.ExitCode);
        Assert.InRange((DateTime.UtcNow - started).TotalSeconds, 2.5, 20);
        var probe = Parse(failed.Stdout).Single(c => c.Id == "archive_probe");
        Assert.Equal("fail", probe.Status);
        Assert.Contains("did not reach", probe.Message);
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", file)).ExitCode);
    }

    [Fact]
    public async Task Inactive_slot_warns_past_its_threshold_and_pending_restart_is_reported()
    {
        await _cluster.ExecAsync("select pg_create_physical_replication_slot('held', true)");
        await _cluster.ExecAsync("create table if not exists churn(x text); insert into churn select repeat('x', 1000) from generate_series(1, 3000)");
        await _cluster.ExecAsync("ALTER SYSTEM SET max_wal_senders = 12");
        await _cluster.ExecAsync("select pg_reload_conf()");
        await Task.Delay(300);
        var file = Manifest("  checks: {slotRetentionWarn: 1MB}");
        var result = await CliRunner.RunAsync("check", "--format", "json", file);
        Assert.Equal(0, result.ExitCode);   // warnings only
        var checks = Parse(result.Stdout);
        var slot = checks.Single(c => c.Id == "slot:held");
        Assert.Equal("warn", slot.Status);
        Assert.Contains("inactive slot held retains", slot.Message);
        if (_cluster.Major >= 17)
        {
            Assert.Contains("(inactive since ", slot.Message);   // 17's inactive_since
        }
        var settings = checks.Single(c => c.Id == "settings");
        Assert.Equal("warn", settings.Status);
        Assert.Contains("max_wal_senders", settings.Message);
        Assert.Equal(2, (await CliRunner.RunAsync("check", "--strict", file)).ExitCode);
        await _cluster.ExecAsync("select pg_drop_replication_slot('held')");
        await _cluster.ExecAsync("ALTER SYSTEM RESET max_wal_senders");
        await _cluster.ExecAsync("select pg_reload_conf()");
    }
}
