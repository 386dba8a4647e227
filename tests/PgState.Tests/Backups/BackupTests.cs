using System.Globalization;
using PgState.Engine.Host;
using PgState.Modules.Backups;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Backups;

/// <summary>What the backup test classes share: a cluster reset per class, a temporary host, a backup "nightly" manifest.</summary>
public abstract class BackupTestBase(ClusterFixture fixture) : IDisposable, IAsyncLifetime
{
    protected ScratchCluster Cluster { get; } = fixture.Cluster;
    protected TempDir Dir { get; } = new();

    public void Dispose() => Dir.Dispose();

    public Task InitializeAsync() => fixture.BeginAsync(GetType());

    Task IAsyncLifetime.DisposeAsync() => Task.CompletedTask;

    protected string Dest => Path.Combine(Dir.Path, "backups");

    protected string Manifest(string backupExtra = "", string schedule = "*-*-* 02:30:00", string scheduler = "systemd") =>
        Dir.Write("backup.yaml", Cluster.Manifest("db",
            $"  backupScheduling: {{unitDirectory: {Dir.Path}/units, cronDirectory: {Dir.Path}/cron, pgstatePath: {Path.Combine(AppContext.BaseDirectory, "pgstate")}, manifestPath: {Dir.Path}/backup.yaml}}\n" +
            $"  backups:\n    - {{name: nightly, schedule: \"{schedule}\", destination: {Dest}, scheduler: {scheduler}{backupExtra}}}"));

    protected static BackupStatus Status(string dest) => BackupRunner.ReadStatus(Path.Combine(dest, ".pgstate-status-nightly.json"))!;

    protected List<string> Finished() => [.. Directory.GetDirectories(Dest).Where(d => !d.EndsWith(".partial", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];

    /// <summary>Backup directories are named by the second they start: wait for a fresh second.</summary>
    protected static async Task NextSecondAsync() => await Task.Delay(1100 - DateTime.UtcNow.Millisecond);
}

/// <summary>
/// The backup proof on every major Debian's client tools (15) can back up — 13, 14, 15: a real
/// pg_basebackup and pg_verifybackup, and a restore started with the server's own pg_ctl.
/// BackupToolTests covers the newer majors, which need newer tools.
/// </summary>
public abstract class BackupRestoreTests(ClusterFixture fixture) : BackupTestBase(fixture)
{
    [Collection(Majors.Pg13)]
    public sealed class Pg13(ClusterFixture<Major13> f) : BackupRestoreTests(f);

    [Collection(Majors.Pg14)]
    public sealed class Pg14(ClusterFixture<Major14> f) : BackupRestoreTests(f);

    [Collection(Majors.Pg15)]
    public sealed class Pg15(ClusterFixture<Major15> f) : BackupRestoreTests(f);

    [Fact]
    public async Task Backup_run_makes_a_verified_backup_that_restores()
    {
        await Cluster.ExecAsync("create table if not exists before_backup(id int); insert into before_backup values (42)");
        var file = Manifest();
        var run = await CliRunner.RunAsync("backup", "run", "nightly", "--manifest", file);
        Assert.True(run.ExitCode == 0, run.ToString());
        var backup = Assert.Single(Finished());
        Assert.True(File.Exists(Path.Combine(backup, "backup_manifest")));
        Assert.Empty(Directory.GetDirectories(Dest, "*.partial"));
        // pg_verifybackup parses the WAL with its own pg_waldump, which reads only its own major's WAL.
        string[] parseWal = Cluster.Major == PostgresServers.DefaultMajor ? [] : ["--no-parse-wal"];
        var verify = await ProcessRunner.Default.RunAsync(Path.Combine(Cluster.ClientBinDirectory, "pg_verifybackup"), [.. parseWal, backup], check: false);
        Assert.True(verify.ExitCode == 0, verify.StandardError);
        var status = Status(Dest);
        Assert.True(status.Verified);
        Assert.Null(status.Error);
        Assert.True(status.Bytes > 1_000_000);
        Assert.Equal(backup, status.Backup);

        // Restore proof: a copy of the plain backup starts as a server and has the row.
        var restore = Path.Combine(Dir.Path, "restore");
        await ProcessRunner.Default.RunAsync("cp", ["-a", backup, restore]);
        await Cluster.ChownToServerAsync(Dir.Path);
        File.SetUnixFileMode(restore, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var port = Cluster.Port + 1;
        await Cluster.AsServerUserAsync(Path.Combine(Cluster.BinDirectory, "pg_ctl"),
            ["-D", restore, "-o", $"-p {port} -k {Dir.Path} -c listen_addresses=''", "-l", Path.Combine(Dir.Path, "restore.log"), "-w", "-t", "60", "start"]);
        try
        {
            await using var connection = new Npgsql.NpgsqlConnection($"Host={Dir.Path};Port={port};Username=postgres;Database=postgres;Pooling=false");
            await connection.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand("select id from before_backup", connection);
            Assert.Equal(42, (int)(await cmd.ExecuteScalarAsync())!);
        }
        finally
        {
            await Cluster.AsServerUserAsync(Path.Combine(Cluster.BinDirectory, "pg_ctl"), ["-D", restore, "-m", "immediate", "-w", "stop"], check: false);
        }
    }
}

/// <summary>Backup runs, verification, retention and schedules: pgstate's own logic, on Debian's server.</summary>
[Collection(SharedClusterB.Name)]
public class BackupTests(ClusterFixture fixture) : BackupTestBase(fixture)
{
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
        await Cluster.ChownToServerAsync(Dest);   // what earlier runs of the job (as the data directory's owner) left
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
        var service = Path.Combine(Dir.Path, "units", "pgstate-backup-db-nightly.service");
        var timer = Path.Combine(Dir.Path, "units", "pgstate-backup-db-nightly.timer");
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
        Assert.Contains("0 3 * * sun postgres ", File.ReadAllText(Path.Combine(Dir.Path, "cron", "pgstate-backup-db-nightly")));
        Assert.Equal(0, (await CliRunner.RunAsync("plan", cron)).ExitCode);
    }

    /// <summary>Files pgstate did not write for this host are never changed or removed; another host's schedule in the same folder is left alone.</summary>
    [Fact]
    public async Task Foreign_and_other_hosts_files_in_the_unit_folder_are_left_alone()
    {
        var units = Path.Combine(Dir.Path, "units");
        Directory.CreateDirectory(units);
        var foreign = Path.Combine(units, "pgstate-backup-db-nightly.service");
        File.WriteAllText(foreign, "[Service]\nExecStart=/usr/local/bin/someone-elses-job\n");
        var otherHost = Path.Combine(units, "pgstate-backup-db2-nightly.timer");
        File.WriteAllText(otherHost, "# Written by pgstate for host db2 from manifest /etc/pgstate/db2.yaml: schedule\n");
        var oldName = Path.Combine(units, "pgstate-backup-nightly.timer");
        File.WriteAllText(oldName, "# Written by pgstate for host db: schedule of base backup \"nightly\".\n");
        var file = Manifest();
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains($"{foreign} exists and was not written by pgstate for host db: pgstate leaves it alone", plan.Stdout);
        Assert.Contains("- backups.nightly.timer", plan.Stdout);                  // the old name this host wrote goes …
        Assert.DoesNotContain("db2", plan.Stdout);                                 // … another host's file is not even mentioned
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", file)).ExitCode);
        Assert.Equal("[Service]\nExecStart=/usr/local/bin/someone-elses-job\n", File.ReadAllText(foreign));
        Assert.True(File.Exists(otherHost));
        Assert.False(File.Exists(oldName));
    }

    [Fact]
    public async Task Bad_OnCalendar_is_a_validation_error_with_its_position()
    {
        var file = Manifest(schedule: "every full moon");
        var result = await CliRunner.RunAsync("validate", file);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"{file}:10:33: backup nightly: schedule \"every full moon\" is not a valid systemd OnCalendar expression", result.Stderr);
    }

    [Fact]
    public async Task Backup_older_than_its_schedule_allows_fails_and_drift_reports_it()
    {
        var dest = Path.Combine(Dir.Path, "backups");
        Directory.CreateDirectory(dest);
        var file = Dir.Write("age.yaml", Cluster.Manifest("db", $"  backupScheduling: {{unitDirectory: {Dir.Path}/units, cronDirectory: {Dir.Path}/cron}}\n" +
            $"  backups:\n    - {{name: nightly, schedule: \"*-*-* 02:30:00\", destination: {dest}}}\n"));
        var old = DateTime.UtcNow.AddDays(-3);
        var backup = Path.Combine(dest, old.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(backup);
        File.WriteAllText(backup + ".verified", "x");
        File.SetLastWriteTimeUtc(backup + ".verified", old);
        File.WriteAllText(Path.Combine(dest, ".pgstate-status-nightly.json"),
            $"{{\"name\":\"nightly\",\"backup\":\"{backup}\",\"startedUtc\":\"{old:O}\",\"endedUtc\":\"{old:O}\",\"bytes\":1,\"verified\":true,\"verification\":\"ok\",\"error\":null}}");
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", file)).ExitCode);

        var result = await CliRunner.RunAsync("check", "--format", "json", file);
        Assert.Equal(2, result.ExitCode);
        using var json = System.Text.Json.JsonDocument.Parse(result.Stdout);
        var check = json.RootElement.GetProperty("hosts")[0].GetProperty("checks").EnumerateArray()
            .Select(c => (Id: c.GetProperty("id").GetString()!, Status: c.GetProperty("status").GetString()!, Message: c.GetProperty("message").GetString()!))
            .Single(c => c.Id == "backup:nightly");
        Assert.Equal("fail", check.Status);
        Assert.Contains("h old; the schedule \"*-*-* 02:30:00\" allows 37 h", check.Message);

        var metrics = Path.Combine(Dir.Path, "m.prom");
        var drift = await CliRunner.RunAsync("drift", "--metrics", metrics, file);
        Assert.Equal(2, drift.ExitCode);
        Assert.Contains("pgstate_check_status{host=\"db\",check=\"backup:nightly\"} 2", File.ReadAllText(metrics));
        Assert.Contains("FAIL    backup:nightly", drift.Stdout);
    }
}
