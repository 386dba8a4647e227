using System.Text.Json;
using PgState.Engine.Host;
using PgState.Modules.Backups;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.PgBackRest;

/// <summary>
/// Real pgBackRest (Debian's package) against a scratch cluster: configuration written by pgstate
/// in a test directory (lock, log and repository there too), stanza created once, backups through
/// `pgstate backup run`, `check` green, archive-push proven, a broken repository failing check.
/// </summary>
[Collection(SharedClusterA.Name)]
public sealed class PgBackRestTests(ClusterFixture fixture) : IAsyncLifetime, IDisposable
{
    private const string CipherVariable = "PGSTATE_TEST_PGBR_CIPHER";
    private const string Cipher = "pgbr-cipher-Zq81xv-do-not-print";

    private readonly ScratchCluster _cluster = fixture.Cluster;
    private readonly TempDir _dir = new();

    private string Repo => Path.Combine(_dir.Path, "repo");

    private string Config => Path.Combine(_dir.Path, "etc", "pgbackrest.conf");

    private string Status => Path.Combine(_dir.Path, "status");

    private static readonly Dictionary<string, string> Environment = new() { [CipherVariable] = Cipher };

    public async Task InitializeAsync()
    {
        await fixture.BeginAsync(GetType());
        foreach (var d in new[] { "log", "lock", "spool" })
        {
            Directory.CreateDirectory(Path.Combine(_dir.Path, d));
        }
        File.SetUnixFileMode(_dir.Path, (UnixFileMode)0b111_101_101);
        await _cluster.ChownToServerAsync(_dir.Path);
    }

    Task IAsyncLifetime.DisposeAsync() => Task.CompletedTask;

    public void Dispose() => _dir.Dispose();

    private string Manifest(string stanza = "main", string repoPath = "") => _dir.Write("pgbackrest.yaml", _cluster.Manifest("db",
        $$"""
          archiving: {walLevel: replica, mode: "on", method: pgbackrest, stanza: main}
          pgbackrest:
            stanza: {{stanza}}
            configPath: {{Config}}
            repositories:
              - type: posix
                path: {{(repoPath.Length > 0 ? repoPath : Repo)}}
                retention: {full: 2}
                cipher: {pass: {fromEnv: {{CipherVariable}} } }
            processMax: 2
            compress: {type: lz4}
            startFast: true
            checkTimeout: 60s
            verify: true
            verifyTimeout: 2min
            options: {lock-path: {{_dir.Path}}/lock, log-path: {{_dir.Path}}/log, log-level-file: "off", log-level-console: warn}
          backupScheduling: {unitDirectory: {{_dir.Path}}/units, cronDirectory: {{_dir.Path}}/cron, pgstatePath: /bin/true, manifestPath: {{_dir.Path}}/pgbackrest.yaml}
          backups:
            - {name: weekly-full, tool: pgbackrest, type: full, schedule: "Sun *-*-* 01:00:00", destination: {{Status}}}
            - name: daily-incr
              tool: pgbackrest
              type: incr
              schedule: "*-*-* 01:00:00"
              destination: {{Status}}
              drill:
                schedule: "Sat *-*-* 03:00:00"
                probes:
                  - {name: markers, sql: "select string_agg(id::text, ',' order by id) from pgbr_marker"}
        """, "allowed"));

    private static List<(string Id, string Status, string Message)> Checks(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return [.. doc.RootElement.GetProperty("hosts")[0].GetProperty("checks").EnumerateArray()
            .Select(c => (c.GetProperty("id").GetString()!, c.GetProperty("status").GetString()!, c.GetProperty("message").GetString()!))];
    }

    private async Task<ProcessResult> PgBackRestAsync(params string[] args) =>
        await _cluster.AsServerUserAsync("pgbackrest", ["--config=" + Config, "--stanza=main", .. args], check: false);

    [Fact]
    public async Task Plan_apply_backups_and_check_run_against_real_pgbackrest()
    {
        var file = Manifest();

        // Plan: the configuration file and the stanza, and no secret anywhere in any rendering.
        foreach (var format in new[] { "text", "json", "markdown" })
        {
            var plan = await CliRunner.RunAsync(["plan", "--format", format, file], Environment);
            Assert.True(plan.ExitCode == 2, plan.ToString());
            Assert.DoesNotContain(Cipher, plan.Stdout + plan.Stderr, StringComparison.Ordinal);
            Assert.Contains("pgbackrest.config", plan.Stdout, StringComparison.Ordinal);
            Assert.Contains("pgbackrest.stanza.main", plan.Stdout, StringComparison.Ordinal);
        }

        var apply = await CliRunner.RunAsync(["apply", "--auto-approve", file], Environment);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.DoesNotContain(Cipher, apply.Stdout + apply.Stderr, StringComparison.Ordinal);
        Assert.Contains("stanza main created", apply.Stdout + apply.Stderr, StringComparison.Ordinal);
        var config = File.ReadAllText(Config);
        Assert.Contains("repo1-cipher-pass=" + Cipher, config, StringComparison.Ordinal);
        Assert.Contains("[main]\npg1-path=" + _cluster.DataDirectory, config, StringComparison.Ordinal);
        Assert.Equal((UnixFileMode)0b110_100_000, File.GetUnixFileMode(Config));
        Assert.True(File.Exists(Path.Combine(Repo, "backup", "main", "backup.info")));
        Assert.Equal($"pgbackrest --config='{Config}' --stanza=main archive-push %p", await _cluster.ShowAsync("archive_command"));

        // Converged: the plan is empty and a second apply creates nothing.
        var again = await CliRunner.RunAsync(["plan", file], Environment);
        Assert.True(again.ExitCode == 0, again.ToString());
        var applyAgain = await CliRunner.RunAsync(["apply", "--auto-approve", file], Environment);
        Assert.True(applyAgain.ExitCode == 0, applyAgain.ToString());
        Assert.DoesNotContain("stanza main", applyAgain.Stdout + applyAgain.Stderr, StringComparison.Ordinal);

        // archive-push works: a switched segment lands in the repository.
        var segment = await _cluster.ScalarAsync<string>("select pg_walfile_name(pg_switch_wal())");
        await _cluster.ExecAsync("select pg_switch_wal()");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        // Wait for this segment, not for any: pgbackrest check switched and archived one already, so a count above 0 proves nothing yet.
        bool Pushed() => Directory.Exists(Path.Combine(Repo, "archive", "main")) &&
            Directory.EnumerateFiles(Path.Combine(Repo, "archive", "main"), "*", SearchOption.AllDirectories).Any(f => Path.GetFileName(f).StartsWith(segment, StringComparison.Ordinal));
        while (!Pushed() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
        Assert.True(await _cluster.ScalarAsync<long>("select archived_count from pg_stat_archiver") > 0, await _cluster.ScalarAsync<string>("select coalesce(last_failed_wal, '') from pg_stat_archiver"));
        Assert.Contains(Directory.EnumerateFiles(Path.Combine(Repo, "archive", "main"), "*", SearchOption.AllDirectories), f => Path.GetFileName(f).StartsWith(segment, StringComparison.Ordinal));

        // A full, then an incremental backup through pgstate backup run; the status files say so.
        var full = await CliRunner.RunAsync(["backup", "run", "weekly-full", "--manifest", file], Environment);
        Assert.True(full.ExitCode == 0, full.ToString());
        await _cluster.ExecAsync("create table if not exists after_full(id int); insert into after_full select generate_series(1, 1000)");
        var incr = await CliRunner.RunAsync(["backup", "run", "daily-incr", "--manifest", file], Environment);
        Assert.True(incr.ExitCode == 0, incr.ToString());
        var fullStatus = BackupRunner.ReadStatus(Path.Combine(Status, ".pgstate-status-weekly-full.json"))!;
        var incrStatus = BackupRunner.ReadStatus(Path.Combine(Status, ".pgstate-status-daily-incr.json"))!;
        Assert.Null(fullStatus.Error);
        Assert.Null(incrStatus.Error);
        Assert.EndsWith("F", fullStatus.Backup, StringComparison.Ordinal);
        Assert.EndsWith("I", incrStatus.Backup, StringComparison.Ordinal);
        var info = await PgBackRestAsync("info", "--output=json");
        Assert.True(info.ExitCode == 0, info.StandardError);
        Assert.Contains("\"type\":\"incr\"", info.StandardOutput, StringComparison.Ordinal);

        // check: pgbackrest check passes, and each schedule's newest backup is young enough.
        var check = await CliRunner.RunAsync(["check", "--format", "json", file], Environment);
        Assert.True(check.ExitCode == 0, check.ToString());
        var checks = Checks(check.Stdout);
        Assert.Contains(checks, c => c.Id == "pgbackrest:check" && c.Status == "ok");
        Assert.Contains(checks, c => c.Id == "pgbackrest:verify" && c.Status == "ok");
        Assert.Contains(checks, c => c.Id == "backup:weekly-full" && c.Status == "ok" && c.Message.Contains(fullStatus.Backup!, StringComparison.Ordinal));
        Assert.Contains(checks, c => c.Id == "backup:daily-incr" && c.Status == "ok" && c.Message.Contains(incrStatus.Backup!, StringComparison.Ordinal));

        // A drill restores through pgbackrest restore to a time between two commits: the first is back, the second is not.
        await _cluster.ExecAsync("drop table if exists pgbr_marker; create table pgbr_marker(id int); insert into pgbr_marker values (1)");
        await Task.Delay(1100);
        var t1 = DateTime.UtcNow;
        await Task.Delay(1100);
        await _cluster.ExecAsync("insert into pgbr_marker values (2)");
        var archivedBefore = await _cluster.ScalarAsync<long>("select archived_count from pg_stat_archiver");
        await _cluster.ExecAsync("select pg_switch_wal()");
        deadline = DateTime.UtcNow.AddSeconds(30);
        while (await _cluster.ScalarAsync<long>("select archived_count from pg_stat_archiver") == archivedBefore && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
        var target = t1.ToString("yyyy-MM-dd HH:mm:ss.ffffff'+00'", System.Globalization.CultureInfo.InvariantCulture);
        var drill = await CliRunner.RunAsync(["restore", "drill", "daily-incr", "--manifest", file, "--format", "json", "--target", target], Environment);
        Assert.True(drill.ExitCode == 0, drill.ToString());
        using (var report = JsonDocument.Parse(drill.Stdout[drill.Stdout.IndexOf('{', StringComparison.Ordinal)..]))
        {
            var r = report.RootElement;
            Assert.True(r.GetProperty("passed").GetBoolean(), drill.ToString());
            Assert.StartsWith(incrStatus.Backup!, r.GetProperty("backup").GetString(), StringComparison.Ordinal);
            Assert.Equal("1", r.GetProperty("probes").EnumerateArray().Single().GetProperty("value").GetString());
            Assert.Contains("--pg1-path=" + Status, r.GetProperty("restoreCommand").GetString(), StringComparison.Ordinal);
        }
        Assert.Empty(Directory.GetDirectories(Status, ".pgstate-drill-*"));

        // A damaged file in the repository: verify (asked for in the manifest) fails the check and says what it found.
        var damaged = Directory.EnumerateFiles(Path.Combine(Repo, "backup", "main"), "*", SearchOption.AllDirectories)
            .Where(f => f.Contains("pg_data", StringComparison.Ordinal)).OrderByDescending(f => new FileInfo(f).Length).First();
        var original = File.ReadAllBytes(damaged);
        File.WriteAllBytes(damaged, original[..(original.Length / 2)]);
        try
        {
            var verify = await CliRunner.RunAsync(["check", "--format", "json", file], Environment);
            Assert.True(verify.ExitCode == 2, verify.ToString());
            var failedVerify = Assert.Single(Checks(verify.Stdout), c => c.Id == "pgbackrest:verify");
            Assert.Equal("fail", failedVerify.Status);
        }
        finally
        {
            File.WriteAllBytes(damaged, original);
        }

        // A repository pgBackRest cannot use: check fails and quotes pgBackRest.
        var moved = Repo + ".moved";
        Directory.Move(Repo, moved);
        try
        {
            var broken = await CliRunner.RunAsync(["check", "--format", "json", file], Environment);
            Assert.True(broken.ExitCode == 2, broken.ToString());
            var failed = Assert.Single(Checks(broken.Stdout), c => c.Id == "pgbackrest:check");
            Assert.Equal("fail", failed.Status);
            Assert.Matches(@"ERROR: \[055\]: unable to load info file '[^']*/archive/main/archive.info'.*FileMissingError", failed.Message);
        }
        finally
        {
            Directory.Move(moved, Repo);
        }
    }

    [Fact]
    public async Task A_changed_secret_is_planned_without_showing_it_and_a_foreign_config_is_left_alone()
    {
        var file = Manifest();
        Directory.CreateDirectory(Path.GetDirectoryName(Config)!);
        File.WriteAllText(Config, "[global]\nrepo1-path=/somewhere\n");
        var plan = await CliRunner.RunAsync(["plan", file], Environment);
        Assert.Contains("was not written by pgstate", plan.Stdout + plan.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("~ pgbackrest.config", plan.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("pgbackrest.stanza", plan.Stdout, StringComparison.Ordinal);
        File.Delete(Config);

        Assert.Equal(0, (await CliRunner.RunAsync(["apply", "--auto-approve", file], Environment)).ExitCode);

        // What a killed apply left beside the file (it may hold the cipher pass) goes at the next run.
        var stale = Path.Combine(Path.GetDirectoryName(Config)!, ".pgbackrest.conf.pgstate-999999999.tmp");
        File.WriteAllText(stale, "repo1-cipher-pass=" + Cipher);
        Assert.Equal(0, (await CliRunner.RunAsync(["plan", file], Environment)).ExitCode);
        Assert.False(File.Exists(stale));

        if (ScratchCluster.IsRoot)
        {
            // A file the server's user cannot read: archive-push would fail on every segment, and the plan says so.
            await ProcessRunner.Default.RunAsync("chown", ["root:root", Config]);
            File.SetUnixFileMode(Config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            var unreadable = await CliRunner.RunAsync(["plan", file], Environment);
            Assert.Contains($"{Config} is not readable by postgres", unreadable.Stdout + unreadable.Stderr, StringComparison.Ordinal);
            await _cluster.ChownToServerAsync(Config);
        }

        var changed = await CliRunner.RunAsync(["plan", file], new Dictionary<string, string> { [CipherVariable] = "another-secret-9931" });
        Assert.True(changed.ExitCode == 2, changed.ToString());
        Assert.Contains("pgbackrest.config", changed.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("another-secret-9931", changed.Stdout + changed.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(Cipher, changed.Stdout + changed.Stderr, StringComparison.Ordinal);

        // Without the secret, nothing is rewritten, and the plan says why.
        var missing = await CliRunner.RunAsync(["plan", file]);
        Assert.Contains(CipherVariable, missing.Stdout + missing.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("pgbackrest.config", missing.Stdout, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, string> BadSettings => new()
    {
        { "unknown repository type", "repositories: [{type: nfs, path: /r}]", "spec.pgbackrest.repositories[0].type: \"nfs\" is not one of" },
        { "retention 0", "repositories: [{path: /r, retention: {full: 0}}]", "spec.pgbackrest.repositories[0].retention.full" },
        { "process-max above the cores", "repositories: [{path: /r}]\n    processMax: 64", "processMax: 64 processes on a host with" },
        { "bad stanza name", "repositories: [{path: /r}]", "is not a stanza name pgBackRest accepts" },
        { "repository inside the data directory", "repositories: [{path: DATA/repo}]", "and the data directory" },
        { "managed option passed through", "repositories: [{path: /r}]\n    options: {repo1-path: /x}", "spec.pgbackrest.options.repo1-path" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task Bad_settings_are_positioned_errors_at_validate(string why, string body, string message)
    {
        var stanza = why == "bad stanza name" ? "\"ma in/x\"" : "main";
        var file = _dir.Write("bad.yaml", _cluster.Manifest("db",
            $"  pgbackrest:\n    stanza: {stanza}\n    {body.Replace("DATA", _cluster.DataDirectory, StringComparison.Ordinal)}"));
        var result = await CliRunner.RunAsync("validate", "--offline", file);
        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Matches(@"bad\.yaml:(9|10|11):\d+: ", result.Stdout + result.Stderr);
        Assert.Contains(message, result.Stdout + result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stanza_mismatch_names_both_positions()
    {
        var file = Manifest(stanza: "other");
        var result = await CliRunner.RunAsync("validate", "--offline", file);
        Assert.True(result.ExitCode == 1, result.ToString());
        var output = result.Stdout + result.Stderr;
        Assert.Contains("spec.archiving.stanza is \"main\" but spec.pgbackrest.stanza (at ", output, StringComparison.Ordinal);
        Assert.Matches(@"pgbackrest\.yaml:8:\d+: .*\(at [^)]*10:\d+\)", output);
    }
}
