using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using PgState.Engine.Host;
using PgState.Modules.Backups;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Backups;

/// <summary>One archiving cluster (method copy, real archiver) and one verified backup, shared by the drill tests.</summary>
public sealed class DrillFixture : IAsyncLifetime
{
    public ScratchCluster Cluster { get; private set; } = null!;

    public TempDir Dir { get; } = new();

    public string Archive => Path.Combine(Dir.Path, "archive");

    public string Dest => Path.Combine(Dir.Path, "backups");

    public string BackupPath { get; private set; } = "";

    /// <summary>An executable the units name (systemd-analyze verify checks ExecStart's program exists).</summary>
    public static string Pgstate { get; } = Path.Combine(AppContext.BaseDirectory, "pgstate");

    private int _files;

    /// <summary>A manifest for this cluster: archiving copy to <paramref name="archive"/> (default: the real archive), backup nightly into <paramref name="dest"/>.</summary>
    public string Manifest(string drill = "", string? dest = null, string? archive = null, string extra = "", string scheduler = "systemd") =>
        Dir.Write($"m{Interlocked.Increment(ref _files)}.yaml", Cluster.Manifest("db",
            $"  archiving:\n    mode: \"on\"\n    method: copy\n    destination: {archive ?? Archive}\n" +
            $"  backupScheduling: {{unitDirectory: {Dir.Path}/units, cronDirectory: {Dir.Path}/cron, pgstatePath: {Pgstate}, manifestPath: {Dir.Path}/m.yaml}}\n" +
            $"  backups:\n    - name: nightly\n      schedule: \"*-*-* 02:30:00\"\n      destination: {dest ?? Dest}\n      scheduler: {scheduler}\n" +
            (drill.Length > 0 ? "      drill:\n" + string.Join('\n', drill.Split('\n').Select(l => "        " + l)) + "\n" : "") + extra, "allowed"));

    public async Task InitializeAsync()
    {
        Cluster = await ScratchCluster.StartAsync();
        Directory.CreateDirectory(Archive);
        await Cluster.ChownToServerAsync(Archive);
        var file = Manifest();
        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        await Cluster.ExecAsync("create table before_backup(n int); insert into before_backup select generate_series(1, 3)");
        var backup = await CliRunner.RunAsync("backup", "run", "nightly", "--manifest", file);
        Assert.True(backup.ExitCode == 0, backup.ToString());
        BackupPath = Directory.GetDirectories(Dest).Single(d => !Path.GetFileName(d).StartsWith('.'));
        await SwitchAsync();
    }

    /// <summary>Closes the current WAL segment and waits until the archiver has copied it; returns its name.</summary>
    public async Task<string> SwitchAsync()
    {
        var segment = await Cluster.ScalarAsync<string>("select pg_walfile_name(pg_switch_wal())");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.Exists(Path.Combine(Archive, segment)) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
        Assert.True(File.Exists(Path.Combine(Archive, segment)), $"{segment} was not archived");
        return segment;
    }

    public async Task DisposeAsync()
    {
        await Cluster.DisposeAsync();
        Dir.Dispose();
    }
}

/// <summary>
/// Restore drills against a real cluster, a real archive (method copy) and a real backup: point in
/// time, missing WAL, corrupt backups, probes, isolation from production, checks and schedules.
/// </summary>
public class DrillTests(DrillFixture fixture) : IClassFixture<DrillFixture>
{
    private readonly ScratchCluster _cluster = fixture.Cluster;

    private static JsonElement Report(CliResult result)
    {
        var json = result.Stdout[result.Stdout.IndexOf('{', StringComparison.Ordinal)..];
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    private static IEnumerable<string> Failures(JsonElement report) => report.GetProperty("failures").EnumerateArray().Select(f => f.GetString()!);

    private static string Probe(JsonElement report, string name) =>
        report.GetProperty("probes").EnumerateArray().Single(p => p.GetProperty("name").GetString() == name).GetProperty("value").GetString()!;

    private static Task<CliResult> DrillAsync(string manifest, params string[] extra) =>
        CliRunner.RunAsync(["restore", "drill", "nightly", "--manifest", manifest, "--format", "json", .. extra]);

    /// <summary>A copy of the fixture's backup in a destination of its own, for a test to damage.</summary>
    private async Task<(string Dest, string Backup)> CopyOfBackupAsync(string name)
    {
        var dest = Path.Combine(fixture.Dir.Path, name);
        Directory.CreateDirectory(dest);
        var backup = Path.Combine(dest, Path.GetFileName(fixture.BackupPath));
        await ProcessRunner.Default.RunAsync("cp", ["-a", fixture.BackupPath, backup]);
        File.Copy(fixture.BackupPath + ".verified", backup + ".verified");
        await _cluster.ChownToServerAsync(dest);
        return (dest, backup);
    }

    /// <summary>A process's command line, or "" when it is gone (processes end while /proc is read).</summary>
    private static string CommandLine(string procDirectory)
    {
        try
        {
            return File.ReadAllText(Path.Combine(procDirectory, "cmdline"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    private static void AssertNoScratchLeft(string workDirectory) =>
        Assert.Empty(Directory.GetDirectories(workDirectory, ".pgstate-drill-*"));

    [Fact]
    public async Task Drill_to_a_moment_restores_exactly_what_was_committed_before_it_and_latest_restores_everything()
    {
        await _cluster.ExecAsync("create table pitr(batch int, n int); insert into pitr select 1, generate_series(1, 100)");
        await Task.Delay(1100);
        var t1 = await _cluster.ScalarAsync<DateTime>("select clock_timestamp()");
        await Task.Delay(1100);
        await _cluster.ExecAsync("insert into pitr select 2, generate_series(1, 50)");
        await fixture.SwitchAsync();
        var target = t1.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss.ffffff'+00'", CultureInfo.InvariantCulture);
        var probes = "probes:\n  - {name: rows, sql: \"select count(*) from pitr\"}\n  - name: batches\n    sql: |\n      -- which batches came back\n      select string_agg(distinct batch::text, ',' order by batch::text)\n      from pitr;\n";

        var atT1 = await DrillAsync(fixture.Manifest($"schedule: \"*-*-* 04:00:00\"\ntarget: \"{target}\"\nmaxRpo: 1h\nmaxRto: 10min\n{probes}"));
        Assert.True(atT1.ExitCode == 0, atT1.ToString());
        var report = Report(atT1);
        Assert.Equal("100", Probe(report, "rows"));
        Assert.Equal("1", Probe(report, "batches"));
        Assert.True(report.GetProperty("passed").GetBoolean());
        Assert.Equal(fixture.BackupPath, report.GetProperty("backup").GetString());
        Assert.Contains("recovery stopping before commit", report.GetProperty("stoppedAt").GetString());
        // RPO: T1 minus the commit of batch 1 (about 1.1 s before it); RTO: the copy, the start, the replay.
        var rpo = report.GetProperty("rpoSeconds").GetDouble();
        Assert.InRange(rpo, 0.5, 5);
        var rto = report.GetProperty("rtoSeconds").GetDouble();
        Assert.InRange(rto, 0.1, 120);
        Assert.True(report.GetProperty("copySeconds").GetDouble() <= rto);
        Assert.True(report.GetProperty("walBytes").GetInt64() > 0);
        Assert.True(report.GetProperty("segmentsFromArchive").GetInt64() >= 1);
        AssertNoScratchLeft(fixture.Dest);

        // On a terminal: progress for the copy and the replay on stderr; the report alone on stdout.
        var latest = await CliRunner.RunAsync(["restore", "drill", "nightly", "--manifest", fixture.Manifest($"schedule: \"*-*-* 04:00:00\"\n{probes}"), "--format", "json"], terminal: true);
        Assert.True(latest.ExitCode == 0, latest.ToString());
        Assert.Contains("copying the backup: ", latest.Stderr);
        Assert.Contains("pgstate: recovery finished; the server accepts connections", latest.Stderr);
        Assert.StartsWith("{", latest.Stdout);
        report = Report(latest);
        Assert.Equal("150", Probe(report, "rows"));
        Assert.Equal("1,2", Probe(report, "batches"));
        Assert.Equal("latest", report.GetProperty("target").GetString());
        Assert.InRange(report.GetProperty("rpoSeconds").GetDouble(), 0, 60);
        Assert.Equal("2", report.GetProperty("timeline").GetString());
        Assert.NotNull(report.GetProperty("recoveryEndLsn").GetString());
    }

    [Fact]
    public async Task A_missing_archived_segment_fails_the_drill_naming_it_and_the_gap()
    {
        await _cluster.ExecAsync("create table gap(n int)");
        var segments = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            await _cluster.ExecAsync($"insert into gap values ({i})");
            segments.Add(await fixture.SwitchAsync());
        }
        var holed = Path.Combine(fixture.Dir.Path, "holed-archive");
        await ProcessRunner.Default.RunAsync("cp", ["-a", fixture.Archive, holed]);
        File.Delete(Path.Combine(holed, segments[1]));

        var result = await DrillAsync(fixture.Manifest("schedule: \"*-*-* 04:00:00\"", archive: holed));
        Assert.True(result.ExitCode == 1, result.ToString());
        var failure = Assert.Single(Failures(Report(result)));
        Assert.Contains($"missing WAL segment {segments[1]}: recovery ended after {segments[0]}", failure);
        Assert.Contains($"holds {segments[2]} … {segments[2]} after a gap of 1 segment(s)", failure);
        AssertNoScratchLeft(fixture.Dest);
    }

    [Fact]
    public async Task A_drill_that_runs_out_of_time_says_how_far_recovery_got()
    {
        // A restore_command that hangs on the second segment recovery needs: the first is restored, then time runs out.
        var label = File.ReadLines(Path.Combine(fixture.BackupPath, "backup_label")).First();
        var first = label[(label.IndexOf("(file ", StringComparison.Ordinal) + 6)..^1];
        var second = first[..16] + (Convert.ToUInt32(first[16..], 16) + 1).ToString("X8", CultureInfo.InvariantCulture);
        var extra = $"      drill:\n        schedule: \"*-*-* 04:00:00\"\n        timeout: 8s\n";
        var file = fixture.Manifest(extra: extra);
        var text = File.ReadAllText(file).Replace("    method: copy\n", "", StringComparison.Ordinal).Replace($"    destination: {fixture.Archive}\n",
            $"    method: command\n    command: \"cp %p {fixture.Archive}/%f\"\n    restoreCommand: \"if [ %f = {second} ]; then sleep 300; fi; cp -- {fixture.Archive}/%f %p\"\n", StringComparison.Ordinal);
        File.WriteAllText(file, text);

        var started = DateTime.UtcNow;
        var result = await DrillAsync(file);
        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.True((DateTime.UtcNow - started).TotalSeconds is >= 8 and < 120, result.ToString());
        var failure = Assert.Single(Failures(Report(result)));
        Assert.StartsWith($"recovery did not finish within 8s: it had restored 1 segment(s) from the archive, the last {first}", failure);
        AssertNoScratchLeft(fixture.Dest);
        Assert.DoesNotContain(Directory.GetDirectories("/proc"), d => CommandLine(d).Contains(".pgstate-drill-nightly", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_tar_backup_is_extracted_and_a_kept_scratch_directory_is_removed_by_the_next_drill()
    {
        var dest = Path.Combine(fixture.Dir.Path, "tar");
        var file = fixture.Manifest("schedule: \"*-*-* 04:00:00\"\nprobes:\n  - {name: rows, sql: \"select count(*) from before_backup\", expect: 3}",
            dest: dest, extra: "      format: tar\n      compression: gzip\n");
        var backup = await CliRunner.RunAsync("backup", "run", "nightly", "--manifest", file);
        Assert.True(backup.ExitCode == 0, backup.ToString());
        Assert.True(File.Exists(Path.Combine(Directory.GetDirectories(dest).Single(d => !Path.GetFileName(d).StartsWith('.')), "base.tar.gz")));

        var kept = await DrillAsync(file, "--keep");
        Assert.True(kept.ExitCode == 0, kept.ToString());
        var report = Report(kept);
        Assert.Equal("3", Probe(report, "rows"));
        Assert.StartsWith("not verified: pg_verifybackup before PostgreSQL 17", report.GetProperty("verification").GetString());
        var scratch = report.GetProperty("directory").GetString()!;
        Assert.True(report.GetProperty("kept").GetBoolean());
        Assert.True(File.Exists(Path.Combine(scratch, "data", "PG_VERSION")));
        Assert.False(File.Exists(Path.Combine(scratch, "data", "postmaster.pid")));   // stopped

        // The next drill (here one that cannot even choose a backup) removes what the last one kept.
        var next = await DrillAsync(file, "--target", "2020-01-01 00:00:00+00");
        Assert.Equal(1, next.ExitCode);
        Assert.Contains("lies before the end of the oldest verified backup of nightly", Failures(Report(next)).Single());
        Assert.False(Directory.Exists(scratch));
    }

    [Fact]
    public async Task A_corrupt_backup_fails_quoting_pg_verifybackup()
    {
        var (dest, backup) = await CopyOfBackupAsync("corrupt");
        var victim = Path.Combine(backup, "PG_VERSION");
        var bytes = File.ReadAllBytes(victim);
        bytes[0] ^= 0x01;
        File.WriteAllBytes(victim, bytes);

        var result = await DrillAsync(fixture.Manifest("schedule: \"*-*-* 04:00:00\"", dest: dest));
        Assert.True(result.ExitCode == 1, result.ToString());
        // The cause first; what followed from it (here the server refuses PG_VERSION "05") after.
        var failure = Failures(Report(result)).First();
        Assert.Contains("fails verification: pg_verifybackup exited with code 1", failure);
        Assert.Contains("checksum mismatch for file \"PG_VERSION\"", failure);
        AssertNoScratchLeft(dest);
    }

    [Fact]
    public async Task A_backup_that_does_not_start_fails_quoting_the_server_log()
    {
        // The WAL the backup needs to reach consistency is gone from the backup and from the archive.
        var (dest, backup) = await CopyOfBackupAsync("no-wal");
        foreach (var segment in Directory.GetFiles(Path.Combine(backup, "pg_wal")).Where(f => Path.GetFileName(f).Length == 24))
        {
            File.Delete(segment);
        }
        var emptyArchive = Path.Combine(fixture.Dir.Path, "empty-archive");
        Directory.CreateDirectory(emptyArchive);

        var result = await DrillAsync(fixture.Manifest("schedule: \"*-*-* 04:00:00\"", dest: dest, archive: emptyArchive));
        Assert.True(result.ExitCode == 1, result.ToString());
        var failure = Failures(Report(result)).Last();
        Assert.StartsWith("the restored backup did not start; the server's log", failure);
        Assert.Contains("FATAL:  could not locate required checkpoint record", failure);
        AssertNoScratchLeft(dest);
    }

    /// <summary>A probe runs as a role of its own on the drill's server: it reads every table, and cannot write a file, read one, or change production.</summary>
    [Fact]
    public async Task A_probe_reads_tables_but_cannot_write_or_read_files_as_the_servers_os_user()
    {
        var victim = Path.Combine(fixture.Dir.Path, "lo-victim");
        File.WriteAllText(victim, "untouched");
        await _cluster.ChownToServerAsync(victim);
        var file = fixture.Manifest("schedule: \"*-*-* 04:00:00\"\nprobes:\n  - {name: rows, sql: \"select count(*) from before_backup\", expect: 3}\n" +
            $"  - {{name: lo, sql: \"select lo_export(lo_from_bytea(0, 'pwned'), '{victim}')\", min: 1}}\n" +
            "  - {name: reads, sql: \"select length(pg_read_file('postgresql.auto.conf'))\", min: 0}\n" +
            "  - {name: superuser, sql: \"select current_setting('is_superuser')\", expect: \"off\"}");
        var result = await DrillAsync(file);
        Assert.Equal(1, result.ExitCode);
        var report = Report(result);
        Assert.Equal("3", Probe(report, "rows"));
        Assert.Equal("off", Probe(report, "superuser"));
        var failures = Failures(report).ToList();
        Assert.Contains(failures, f => f.StartsWith("probe lo: failed on database postgres: 42501", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("probe reads: failed on database postgres: 42501", StringComparison.Ordinal));
        Assert.Equal("untouched", File.ReadAllText(victim));
    }

    /// <summary>Whoever can write the work directory can plant links: the drill follows none of them, and never stops production.</summary>
    [Fact]
    public async Task Planted_links_in_the_work_directory_are_removed_not_followed_and_a_work_directory_leading_into_production_is_refused()
    {
        var work = Path.Combine(fixture.Dir.Path, "work-links");
        Directory.CreateDirectory(work);
        await _cluster.ChownToServerAsync(work);
        // Planted by the work directory's owner: a stale "drill directory" that is a link to production's root, and one whose data is a link to production's data.
        await _cluster.AsServerUserAsync("ln", ["-s", _cluster.Root, Path.Combine(work, ".pgstate-drill-nightly-20200101T000000Z")]);
        var fake = Path.Combine(work, ".pgstate-drill-nightly-20200101T000001Z");
        await _cluster.AsServerUserAsync("mkdir", [fake]);
        await _cluster.AsServerUserAsync("ln", ["-s", _cluster.DataDirectory, Path.Combine(fake, "data")]);
        var file = fixture.Manifest($"schedule: \"*-*-* 04:00:00\"\nworkDirectory: {work}\nprobes:\n  - {{name: rows, sql: \"select count(*) from before_backup\", expect: 3}}");
        var result = await DrillAsync(file);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(1, await _cluster.ScalarAsync<int>("select 1"));                     // production still up
        Assert.True(File.Exists(Path.Combine(_cluster.DataDirectory, "postmaster.pid")));
        Assert.True(Directory.Exists(_cluster.Root));
        AssertNoScratchLeft(work);

        // A work directory that leads into production's data directory: refused where the drill runs, nothing written there.
        var link = Path.Combine(fixture.Dir.Path, "wdlink");
        File.CreateSymbolicLink(link, _cluster.DataDirectory);
        var before = Directory.GetFileSystemEntries(_cluster.DataDirectory).Order(StringComparer.Ordinal).ToList();
        var into = await DrillAsync(fixture.Manifest($"schedule: \"*-*-* 04:00:00\"\nworkDirectory: {link}"));
        Assert.Equal(1, into.ExitCode);
        Assert.Contains("the production data directory", into.Stdout + into.Stderr);
        Assert.Equal(before, Directory.GetFileSystemEntries(_cluster.DataDirectory).Order(StringComparer.Ordinal).ToList());
        File.Delete(link);
    }

    [Fact]
    public async Task A_probe_mismatch_fails_naming_probe_and_values_and_the_check_reports_it()
    {
        var file = fixture.Manifest("schedule: \"*-*-* 04:00:00\"\nprobes:\n  - {name: three_rows, sql: \"select count(*) from before_backup\", expect: 3}\n" +
            "  - {name: max_id, sql: \"select max(n) from before_backup;\", min: 10, max: 20}\n  - {name: missing, sql: select count(*) from no_such_table}");
        var result = await DrillAsync(file);
        Assert.True(result.ExitCode == 1, result.ToString());
        var report = Report(result);
        Assert.Equal("3", Probe(report, "three_rows"));
        Assert.Equal(["probe max_id: expected a value between 10 and 20, got 3", "probe missing: failed on database postgres: 42P01: relation \"no_such_table\" does not exist"],
            Failures(report));

        var check = await CliRunner.RunAsync("check", "--format", "json", file);
        Assert.Equal(2, check.ExitCode);
        Assert.Contains("the last restore drill of nightly", check.Stdout);
        Assert.Contains("failed: probe max_id: expected a value between 10 and 20, got 3", check.Stdout);
    }

    [Fact]
    public async Task Production_is_untouched_by_a_drill_and_a_passing_drill_is_a_healthy_check_with_metrics()
    {
        async Task<string> SnapshotAsync()
        {
            var data = _cluster.DataDirectory;
            var lines = new List<string>();
            foreach (var f in new[] { "postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf", "postmaster.pid" })
            {
                lines.Add($"{f} {Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(data, f))))}");
            }
            lines.Add("data: " + string.Join(' ', Directory.GetFileSystemEntries(data).Select(Path.GetFileName).Order(StringComparer.Ordinal)));
            lines.Add("sockets: " + string.Join(' ', Directory.GetFileSystemEntries(_cluster.SocketDirectory, ".s.PGSQL.*").Select(Path.GetFileName).Order(StringComparer.Ordinal)));
            lines.Add("archive: " + string.Join(' ', Directory.GetFiles(fixture.Archive).Select(f => $"{Path.GetFileName(f)}:{new FileInfo(f).Length}").Order(StringComparer.Ordinal)));
            lines.Add("archiver: " + await _cluster.ScalarAsync<string>("select archived_count || '/' || failed_count || '/' || coalesce(last_archived_wal, '') from pg_stat_archiver"));
            lines.Add("port: " + await _cluster.ShowAsync("port") + " listen: " + await _cluster.ShowAsync("listen_addresses"));
            return string.Join('\n', lines);
        }

        var file = fixture.Manifest("schedule: \"*-*-* 04:00:00\"\nmaxRpo: 1d\nmaxRto: 10min\nprobes:\n  - {name: rows, sql: \"select count(*) from before_backup\", expect: 3}");
        var before = await SnapshotAsync();
        // The binary that ships (Native AOT under scripts/test.sh), as a schedule runs it: no terminal, so the report and nothing else.
        var drill = await PgStateBinary.RunAsync(["restore", "drill", "nightly", "--manifest", file], timeout: TimeSpan.FromMinutes(5));
        Assert.True(drill.ExitCode == 0, drill.StandardOutput + drill.StandardError);
        Assert.StartsWith("Restore drill of backup nightly (host db): PASSED\n", drill.StandardOutput);
        Assert.Contains("  probe rows    3: ok\n", drill.StandardOutput);
        Assert.Equal("", drill.StandardError);
        Assert.Equal(before, await SnapshotAsync());
        Assert.DoesNotContain(Directory.GetFiles(fixture.Archive), f => f.EndsWith(".history", StringComparison.Ordinal));

        var check = await CliRunner.RunAsync("check", "--format", "json", file);
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Contains("\"id\": \"restore-drill:nightly\",\n          \"status\": \"ok\"", check.Stdout);
        var metrics = Path.Combine(fixture.Dir.Path, "drill.prom");
        await CliRunner.RunAsync("drift", "--metrics", metrics, file);
        var prom = File.ReadAllText(metrics);
        Assert.Contains("pgstate_check_status{host=\"db\",check=\"restore-drill:nightly\"} 0", prom);
        Assert.Matches("pgstate_check_drill_rpo_seconds\\{host=\"db\",check=\"restore-drill:nightly\"\\} [0-9.E+-]+\n", prom);
        Assert.Matches("pgstate_check_drill_rto_seconds\\{host=\"db\",check=\"restore-drill:nightly\"\\} [0-9.E+-]+\n", prom);
        Assert.Contains("pgstate_check_drill_last_success_timestamp_seconds{host=\"db\",check=\"restore-drill:nightly\"} ", prom);
        Assert.Equal(before, await SnapshotAsync());
    }

    [Fact]
    public async Task A_drill_older_than_its_schedule_or_over_its_limits_fails_the_check()
    {
        var dest = Path.Combine(fixture.Dir.Path, "stale");
        Directory.CreateDirectory(dest);
        var file = fixture.Manifest("schedule: \"*-*-* 04:00:00\"\nmaxRto: 1s", dest: dest);
        var old = DateTime.UtcNow.AddDays(-3);
        var stale = new DrillReport { Name = "nightly", Host = "db", Kind = "drill", StartedUtc = old, EndedUtc = old, Target = "latest", Passed = true, RpoSeconds = 1, RtoSeconds = 0.5, LastSuccessUtc = old };
        File.WriteAllText(Path.Combine(dest, ".pgstate-drill-nightly.json"), DrillReports.Json(stale));
        var check = await CliRunner.RunAsync("check", file);
        Assert.Equal(2, check.ExitCode);
        Assert.Contains("the last restore drill of nightly is 72 h old; its schedule \"*-*-* 04:00:00\" allows 37 h", check.Stdout);

        var slow = stale with { StartedUtc = DateTime.UtcNow, EndedUtc = DateTime.UtcNow, Passed = false, RtoSeconds = 30, Failures = ["RTO 30.0 s exceeds maxRto 1s"] };
        File.WriteAllText(Path.Combine(dest, ".pgstate-drill-nightly.json"), DrillReports.Json(slow));
        check = await CliRunner.RunAsync("check", file);
        Assert.Equal(2, check.ExitCode);
        Assert.Contains("failed: RTO 30.0 s exceeds maxRto 1s", check.Stdout);
    }

    [Fact]
    public async Task The_drill_schedule_is_planned_applied_and_converges_as_timer_or_cron()
    {
        var file = fixture.Manifest("schedule: \"*-*-* 04:00:00\"");
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains("+ backups.nightly.drill.service", plan.Stdout);
        Assert.Contains("+ backups.nightly.drill.timer", plan.Stdout);
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", file)).ExitCode);
        Assert.Equal(0, (await CliRunner.RunAsync("plan", file)).ExitCode);
        var service = Path.Combine(fixture.Dir.Path, "units", "pgstate-drill-db-nightly.service");
        var timer = Path.Combine(fixture.Dir.Path, "units", "pgstate-drill-db-nightly.timer");
        Assert.StartsWith("# Written by pgstate for host db from manifest ", File.ReadAllText(service));
        Assert.Contains($"ExecStart={DrillFixture.Pgstate} restore drill nightly --manifest {fixture.Dir.Path}/m.yaml\n", File.ReadAllText(service));
        Assert.Contains("User=postgres\nGroup=postgres\n", File.ReadAllText(service));
        Assert.DoesNotContain("LoadCredential", File.ReadAllText(service));
        Assert.Contains("OnCalendar=*-*-* 04:00:00", File.ReadAllText(timer));
        var verify = await ProcessRunner.Default.RunAsync("systemd-analyze", ["verify", service, timer], check: false);
        Assert.True(verify.ExitCode == 0, verify.StandardError + verify.StandardOutput);

        var cron = fixture.Manifest("schedule: \"Sun *-*-* 05:00:00\"", scheduler: "cron");
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", cron)).ExitCode);
        Assert.False(File.Exists(timer));
        Assert.Contains($"0 5 * * sun postgres {DrillFixture.Pgstate} restore drill nightly --manifest {fixture.Dir.Path}/m.yaml",
            File.ReadAllText(Path.Combine(fixture.Dir.Path, "cron", "pgstate-drill-db-nightly")));
        Assert.Equal(0, (await CliRunner.RunAsync("plan", cron)).ExitCode);

        // No drill: its schedule files go.
        var none = fixture.Manifest(scheduler: "cron");
        var removal = await CliRunner.RunAsync("plan", none);
        Assert.Contains("- backups.nightly.drill.cron", removal.Stdout);
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", none)).ExitCode);
        Assert.False(File.Exists(Path.Combine(fixture.Dir.Path, "cron", "pgstate-drill-db-nightly")));
    }

    public static TheoryData<string, string, string, string> BadSettings => new()
    {
        { "unknown target", "target: yesterday", "target: yesterday", "drill.target: \"yesterday\" is not latest, a timestamp with a time zone" },
        { "timestamp without zone", "target: \"2026-01-01 12:00:00\"", "target: ", "has no time zone: add Z or an offset" },
        { "target beyond retention", "target: 8d ago", "target: 8d ago", "drill.target 8d ago lies before every backup retention keeps (retention.maxAge 7d)" },
        { "probe not a select", "probes:\n  - {name: wipe, sql: \"delete from before_backup\"}", "sql: \"delete", "drill probe wipe is not one read-only query: it starts with DELETE, not SELECT" },
        { "two statements", "probes:\n  - {name: two, sql: \"select 1; drop table x\"}", "sql: \"select 1;", "it holds more than one statement" },
        { "work directory is the data directory", "workDirectory: DATA", "workDirectory: ", "the drill's work directory DATA is the production data directory" },
        { "work directory inside the data directory", "workDirectory: DATA/pg_wal/scratch", "workDirectory: ", "is inside the production data directory" },
        { "work directory inside the archive", "workDirectory: ARCHIVE/drills", "workDirectory: ", "is inside the WAL archive" },
        { "reserved setting", "settings: {archive_mode: \"on\", shared_buffers: 64MB}", "archive_mode", "drill.settings.archive_mode: the drill sets this parameter itself" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task Bad_drill_settings_are_positioned_errors_and_nothing_starts(string kind, string drill, string at, string message)
    {
        drill = drill.Replace("DATA", _cluster.DataDirectory, StringComparison.Ordinal).Replace("ARCHIVE", fixture.Archive, StringComparison.Ordinal);
        message = message.Replace("DATA", _cluster.DataDirectory, StringComparison.Ordinal);
        var file = fixture.Manifest("schedule: \"*-*-* 04:00:00\"\n" + drill, extra: "      retention: {maxAge: 7d}\n");
        var lines = File.ReadAllLines(file);
        var line = Array.FindIndex(lines, l => l.Contains(at, StringComparison.Ordinal)) + 1;
        var validate = await CliRunner.RunAsync("validate", "--offline", file);
        Assert.True(validate.ExitCode == 1, $"{kind}: {validate}");
        var reported = validate.Stderr.Split('\n').FirstOrDefault(l => l.Contains(message, StringComparison.Ordinal));
        Assert.True(reported is not null, $"{kind}: expected '{message}'\n{validate}");
        Assert.StartsWith($"{file}:{line}:", reported);

        var drillRun = await CliRunner.RunAsync("restore", "drill", "nightly", "--manifest", file);
        Assert.Equal(1, drillRun.ExitCode);
        Assert.Equal("", drillRun.Stdout);
        Assert.Empty(Directory.GetDirectories(fixture.Dest, ".pgstate-drill-*"));
    }

    [Fact]
    public async Task A_target_before_every_backup_is_an_error_at_validate_against_the_host()
    {
        var file = fixture.Manifest("schedule: \"*-*-* 04:00:00\"\ntarget: \"2020-01-01 00:00:00+00\"");
        var validate = await CliRunner.RunAsync("validate", file);
        Assert.Equal(1, validate.ExitCode);
        Assert.Contains($"{file}:20:17: backup nightly: drill.target 2020-01-01 00:00:00+00 lies before the end of the oldest backup there is ({Path.GetFileName(fixture.BackupPath)}, ended ", validate.Stderr);
        Assert.Contains("[PGS508]", validate.Stderr);
    }
}
