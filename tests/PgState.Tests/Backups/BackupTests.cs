using System.Globalization;
using PgState.Engine.Host;
using PgState.Modules.Backups;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Backups;

/// <summary>Real pg_basebackup and pg_verifybackup against a scratch cluster; a restore proves the backup.</summary>
[Collection(SharedClusterB.Name)]
public class BackupTests(ClusterFixture fixture) : IDisposable, IAsyncLifetime
{
    private readonly ScratchCluster _cluster = fixture.Cluster;

    public Task InitializeAsync() => fixture.BeginAsync(GetType());

    Task IAsyncLifetime.DisposeAsync() => Task.CompletedTask;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Dest => Path.Combine(_dir.Path, "backups");

    private string Manifest(string backupExtra = "", string schedule = "*-*-* 02:30:00", string scheduler = "systemd") =>
        _dir.Write("backup.yaml", _cluster.Manifest("db",
            $"  backupScheduling: {{unitDirectory: {_dir.Path}/units, cronDirectory: {_dir.Path}/cron, pgstatePath: {Path.Combine(AppContext.BaseDirectory, "pgstate")}, manifestPath: {_dir.Path}/backup.yaml}}\n" +
            $"  backups:\n    - {{name: nightly, schedule: \"{schedule}\", destination: {Dest}, scheduler: {scheduler}{backupExtra}}}"));

    private static BackupStatus Status(string dest) => BackupRunner.ReadStatus(Path.Combine(dest, ".pgstate-status-nightly.json"))!;

    private List<string> Finished() => [.. Directory.GetDirectories(Dest).Where(d => !d.EndsWith(".partial", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];

    /// <summary>Backup directories are named by the second they start: wait for a fresh second.</summary>
    private static async Task NextSecondAsync() => await Task.Delay(1100 - DateTime.UtcNow.Millisecond);

    [Fact]
    public async Task Backup_run_makes_a_verified_backup_that_restores()
    {
        await _cluster.ExecAsync("create table if not exists before_backup(id int); insert into before_backup values (42)");
        var file = Manifest();
        var run = await CliRunner.RunAsync("backup", "run", "nightly", "--manifest", file);
        Assert.True(run.ExitCode == 0, run.ToString());
        var backup = Assert.Single(Finished());
        Assert.True(File.Exists(Path.Combine(backup, "backup_manifest")));
        Assert.Empty(Directory.GetDirectories(Dest, "*.partial"));
        var verify = await ProcessRunner.Default.RunAsync(Path.Combine(_cluster.BinDirectory, "pg_verifybackup"), [backup], check: false);
        Assert.True(verify.ExitCode == 0, verify.StandardError);
        var status = Status(Dest);
        Assert.True(status.Verified);
        Assert.Null(status.Error);
        Assert.True(status.Bytes > 1_000_000);
        Assert.Equal(backup, status.Backup);

        // Restore proof: a copy of the plain backup starts as a server and has the row.
        var restore = Path.Combine(_dir.Path, "restore");
        await ProcessRunner.Default.RunAsync("cp", ["-a", backup, restore]);
        await _cluster.ChownToServerAsync(_dir.Path);
        File.SetUnixFileMode(restore, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var port = _cluster.Port + 1;
        await _cluster.AsServerUserAsync(Path.Combine(_cluster.BinDirectory, "pg_ctl"),
            ["-D", restore, "-o", $"-p {port} -k {_dir.Path} -c listen_addresses=''", "-l", Path.Combine(_dir.Path, "restore.log"), "-w", "-t", "60", "start"]);
        try
        {
            await using var connection = new Npgsql.NpgsqlConnection($"Host={_dir.Path};Port={port};Username=postgres;Database=postgres;Pooling=false");
            await connection.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand("select id from before_backup", connection);
            Assert.Equal(42, (int)(await cmd.ExecuteScalarAsync())!);
        }
        finally
        {
            await _cluster.AsServerUserAsync(Path.Combine(_cluster.BinDirectory, "pg_ctl"), ["-D", restore, "-m", "immediate", "-w", "stop"], check: false);
        }
    }

    [Fact]
    public async Task A_flipped_byte_fails_verification_and_the_status_says_so()
    {
        var file = Manifest();
        Assert.Equal(0, (await CliRunner.RunAsync("backup", "run", "nightly", "--manifest", file)).ExitCode);
        var backup = Assert.Single(Finished());
        var victim = Path.Combine(backup, "PG_VERSION");
        var bytes = File.ReadAllBytes(victim);
        bytes[0] ^= 0x01;
        File.WriteAllBytes(victim, bytes);

        var verify = await CliRunner.RunAsync("backup", "verify", "nightly", "--manifest", file);
        Assert.Equal(1, verify.ExitCode);
        Assert.Contains("pg_verifybackup exited with code 1", verify.Stdout);
        Assert.Contains("checksum mismatch for file \"PG_VERSION\"", verify.Stdout);
        var status = Status(Dest);
        Assert.False(status.Verified);
        Assert.Contains("checksum mismatch", status.Error);
        Assert.False(File.Exists(backup + ".verified"));
    }

    [Fact]
    public async Task Retention_keeps_count_newest_and_removes_stale_partials_only()
    {
        var file = Manifest(", retention: {count: 2}");
        Directory.CreateDirectory(Dest);
        var stale = Path.Combine(Dest, "20200101T000000Z.partial");
        var live = Path.Combine(Dest, "20200101T000001Z.partial");
        Directory.CreateDirectory(stale);
        Directory.CreateDirectory(live);
        File.WriteAllText(stale + ".pid", "999999999");
        File.WriteAllText(live + ".pid", Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        for (var i = 0; i < 3; i++)
        {
            await NextSecondAsync();
            var run = await CliRunner.RunAsync("backup", "run", "nightly", "--manifest", file);
            Assert.True(run.ExitCode == 0, run.ToString());
        }
        Assert.Equal(2, Finished().Count);
        Assert.False(Directory.Exists(stale));
        Assert.True(Directory.Exists(live));   // its run (this test process) is still alive
        Assert.All(Finished(), b => Assert.True(File.Exists(b + ".verified")));
    }

    [Fact]
    public void Retention_never_removes_the_newest_verified_backup()
    {
        var now = new DateTime(2026, 11, 22, 12, 0, 0, DateTimeKind.Utc);
        BackupEntry B(int daysAgo, bool verified) => new($"/b/{daysAgo}", now.AddDays(-daysAgo), verified);
        var onlyVerified = B(30, true);
        Assert.Empty(Retention.ToDelete([onlyVerified, B(1, false)], now, count: 1, maxAge: TimeSpan.FromDays(7)));
        var deleted = Retention.ToDelete([B(1, true), B(2, true), B(3, true), B(10, true), B(4, false)], now, count: 5, maxAge: TimeSpan.FromDays(7));
        Assert.Equal(["/b/10", "/b/4"], deleted.Select(d => d.Path).Order());
        Assert.Equal(["/b/3"], Retention.ToDelete([B(1, true), B(2, true), B(3, true)], now, count: 2, maxAge: null).Select(d => d.Path));
    }

    [Fact]
    public async Task Schedules_plan_apply_plan_and_units_pass_systemd_analyze_verify()
    {
        var file = Manifest();
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains("+ backups.nightly.service", plan.Stdout);
        Assert.Contains("+ backups.nightly.timer", plan.Stdout);
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", file)).ExitCode);
        Assert.Equal(0, (await CliRunner.RunAsync("plan", file)).ExitCode);
        var service = Path.Combine(_dir.Path, "units", "pgstate-backup-db-nightly.service");
        var timer = Path.Combine(_dir.Path, "units", "pgstate-backup-db-nightly.timer");
        Assert.Contains($"backup run nightly --manifest {file}", File.ReadAllText(service));
        Assert.Contains("User=postgres\nGroup=postgres\n", File.ReadAllText(service));
        Assert.StartsWith("# Written by pgstate for host db from manifest ", File.ReadAllText(service));
        Assert.Contains("OnCalendar=*-*-* 02:30:00", File.ReadAllText(timer));
        Assert.Contains("Persistent=true", File.ReadAllText(timer));
        var verify = await ProcessRunner.Default.RunAsync("systemd-analyze", ["verify", service, timer], check: false);
        Assert.True(verify.ExitCode == 0, verify.StandardError + verify.StandardOutput);

        // A changed schedule is an update of the timer only.
        var changed = Manifest(schedule: "Sun *-*-* 03:00:00");
        var update = await CliRunner.RunAsync("plan", changed);
        Assert.Contains("~ backups.nightly.timer: \"line 6: OnCalendar=*-*-* 02:30:00\" -> \"line 6: OnCalendar=Sun *-*-* 03:00:00\"", update.Stdout);
        Assert.DoesNotContain("backups.nightly.service", update.Stdout);

        // cron instead: the timer and service go, /etc/cron.d-style file comes.
        var cron = Manifest(schedule: "Sun *-*-* 03:00:00", scheduler: "cron");
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", cron)).ExitCode);
        Assert.False(File.Exists(timer));
        Assert.Contains("0 3 * * sun postgres ", File.ReadAllText(Path.Combine(_dir.Path, "cron", "pgstate-backup-db-nightly")));
        Assert.Equal(0, (await CliRunner.RunAsync("plan", cron)).ExitCode);
    }

    [Fact]
    public async Task Bad_OnCalendar_is_a_validation_error_with_its_position()
    {
        var file = Manifest(schedule: "every full moon");
        var result = await CliRunner.RunAsync("validate", file);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"{file}:10:33: backup nightly: schedule \"every full moon\" is not a valid systemd OnCalendar expression", result.Stderr);
    }
}
