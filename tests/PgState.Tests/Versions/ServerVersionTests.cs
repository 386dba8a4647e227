using System.Text.Json;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Versions;

/// <summary>
/// Several majors on one host, and servers newer than this pgstate knows: a data directory is
/// restarted with its own major's programs only; an unknown version is a warning, an unknown
/// catalog shape a clear error naming the module, never a crash.
/// </summary>
public sealed class ServerVersionTests
{
    private static int PostmasterPid(ScratchCluster cluster) =>
        int.Parse(File.ReadLines(Path.Combine(cluster.DataDirectory, "postmaster.pid")).First().Trim(), System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Each_data_directory_is_restarted_with_its_own_majors_pg_ctl_when_several_are_installed()
    {
        // Debian's 15 under /usr/lib/postgresql and a fetched 17 elsewhere: the newest installed
        // directory pgstate would find by name is 15's, which must never start 17's data directory.
        await using var pg15 = await ScratchCluster.StartAsync(15);
        await using var pg17 = await ScratchCluster.StartAsync(17);
        using var dir = new TempDir();
        foreach (var cluster in new[] { pg17, pg15 })
        {
            var before = PostmasterPid(cluster);
            var file = dir.Write($"r{cluster.Major}.yaml", cluster.Manifest("db", "  settings: {max_wal_senders: 12}", "allowed"));
            var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
            Assert.True(apply.ExitCode == 0, apply.ToString());
            Assert.Contains("PostgreSQL was restarted", apply.Stdout);
            var after = PostmasterPid(cluster);
            Assert.NotEqual(before, after);
            var exe = new FileInfo($"/proc/{after}/exe").LinkTarget;
            Assert.Equal(Path.Combine(cluster.BinDirectory, "postgres"), exe);
            Assert.Equal(cluster.Major, await cluster.ScalarAsync<int>("select current_setting('server_version_num')::int / 10000"));
            Assert.Equal("12", await cluster.ShowAsync("max_wal_senders"));
        }
    }

    [Fact]
    public void Without_a_running_postmaster_the_data_directorys_major_decides_and_no_other_major_is_taken()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "PG_VERSION"), "17\n");
        // No postmaster.pid; 15 is installed where PostgreSQL programs are looked for, 17 is not.
        var e = Assert.Throws<PgStateException>(() => PostgresPrograms.ServerProgram("pg_ctl", dir.Path, 15));
        Assert.Contains("cannot find pg_ctl of PostgreSQL 17 (looked in /usr/lib/postgresql/17/bin and /usr/pgsql-17/bin)", e.Message);
        File.WriteAllText(Path.Combine(dir.Path, "PG_VERSION"), "15\n");
        Assert.Equal("/usr/lib/postgresql/15/bin/pg_ctl", PostgresPrograms.ServerProgram("pg_ctl", dir.Path, 17));
    }

    private static string FullManifest(ScratchCluster cluster, string dir) => cluster.Manifest("db",
        $"  archiving: {{mode: \"on\", method: copy, destination: {dir}/archive}}\n" +
        "  settings: {max_wal_senders: 10}\n" +
        "  hba:\n    mode: managed-block\n    rules:\n      - {type: local, database: all, user: postgres, method: trust}\n" +
        "  roles:\n    - {name: app_backup, login: true, replication: true}\n" +
        "  slots:\n    - {name: standby1, type: physical}\n" +
        $"  backupScheduling: {{unitDirectory: {dir}/units, cronDirectory: {dir}/cron}}\n" +
        $"  backups:\n    - {{name: nightly, schedule: \"*-*-* 02:30:00\", destination: {dir}/backups}}\n");

    [Fact]
    public async Task A_server_newer_than_pgstate_knows_is_a_warning_and_every_module_plans_and_checks()
    {
        await using var cluster = await ScratchCluster.StartAsync(18);
        using var dir = new TempDir();
        var file = dir.Write("future.yaml", FullManifest(cluster, dir.Path));
        var env = new Dictionary<string, string> { ["PGSTATE_TEST_SERVER_VERSION_NUM"] = "190000" };

        var plan = await CliRunner.RunAsync(["plan", file], env);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains("PostgreSQL 19.0 (PGSTATE_TEST_SERVER_VERSION_NUM; really 18.", plan.Stdout);
        Assert.Contains("is newer than 18, the newest version this pgstate was tested against", plan.Stdout);
        foreach (var address in new[] { "settings.archive_mode", "hba.rule[0]", "roles.app_backup", "slots.standby1", "backups.nightly.timer" })
        {
            Assert.Contains(address, plan.Stdout);
        }

        var check = await CliRunner.RunAsync(["check", "--format", "json", file], env);
        Assert.DoesNotContain("internal error", check.Stderr);
        using var json = JsonDocument.Parse(check.Stdout);
        var ids = json.RootElement.GetProperty("hosts")[0].GetProperty("checks").EnumerateArray()
            .ToDictionary(c => c.GetProperty("id").GetString()!, c => c.GetProperty("status").GetString()!);
        Assert.Equal("ok", ids["checkpoints"]);
        Assert.Equal("ok", ids["pg_wal"]);
        Assert.Equal("fail", ids["backup_tools"]);   // Debian's 15 cannot back up 18 (nor "19")
    }

    [Fact]
    public async Task A_catalog_shape_pgstate_does_not_know_is_a_clear_error_naming_the_module_not_a_crash()
    {
        // A 16 server said to be 19: pgstate asks for 17's catalogs (invalidation_reason,
        // pg_stat_checkpointer), which this server does not have — as a real 19 may lack what 18 had.
        await using var cluster = await ScratchCluster.StartAsync(16);
        using var dir = new TempDir();
        var file = dir.Write("shape.yaml", FullManifest(cluster, dir.Path));
        var env = new Dictionary<string, string> { ["PGSTATE_TEST_SERVER_VERSION_NUM"] = "190000" };

        var plan = await CliRunner.RunAsync(["plan", file], env);
        Assert.Equal(1, plan.ExitCode);
        Assert.DoesNotContain("internal error", plan.Stderr);
        Assert.True(plan.Stderr.Contains("pgstate: error: the replication module's catalog query failed: 42703: column \"invalidation_reason\" does not exist. " +
            "PostgreSQL 19.0 (PGSTATE_TEST_SERVER_VERSION_NUM; really 16.", StringComparison.Ordinal), plan.ToString());
        Assert.Contains("is newer than 18, the newest version this pgstate knows, and its catalogs changed: use a pgstate that supports PostgreSQL 19", plan.Stderr);

        var check = await CliRunner.RunAsync(["check", "--format", "json", file], env);
        Assert.Equal(2, check.ExitCode);
        using var json = JsonDocument.Parse(check.Stdout);
        var checks = json.RootElement.GetProperty("hosts")[0].GetProperty("checks").EnumerateArray()
            .ToDictionary(c => c.GetProperty("id").GetString()!, c => (Status: c.GetProperty("status").GetString()!, Message: c.GetProperty("message").GetString()!));
        Assert.Equal("fail", checks["checkpoints"].Status);
        Assert.Contains("the checkpoints check could not run: 42P01: relation \"pg_stat_checkpointer\" does not exist (PostgreSQL 19.0", checks["checkpoints"].Message);
        Assert.Equal("ok", checks["pg_wal"].Status);        // the other checks still ran
        Assert.Equal("ok", checks["replication"].Status);
    }
}

/// <summary>
/// Backups of servers newer than the installed client tools (Debian's 15 against 16, 17, 18): the
/// plan warns, check fails and the run fails at once, each naming the tool, its version, the
/// server's version and what to install — instead of a failure at night.
/// </summary>
public abstract class BackupToolTests(ClusterFixture fixture) : IDisposable, IAsyncLifetime
{
    private readonly ScratchCluster cluster = fixture.Cluster;

    public Task InitializeAsync() => fixture.BeginAsync(GetType());

    Task IAsyncLifetime.DisposeAsync() => Task.CompletedTask;

    [Collection(Majors.Pg16)]
    public sealed class Pg16(ClusterFixture<Major16> f) : BackupToolTests(f);

    [Collection(Majors.Pg17)]
    public sealed class Pg17(ClusterFixture<Major17> f) : BackupToolTests(f);

    [Collection(Majors.Pg18)]
    public sealed class Pg18(ClusterFixture<Major18> f) : BackupToolTests(f);

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Plan_check_and_run_name_the_tool_its_version_the_server_and_what_to_install()
    {
        var dest = Path.Combine(_dir.Path, "backups");
        var file = _dir.Write("b.yaml", cluster.Manifest("db",
            $"  backupScheduling: {{unitDirectory: {_dir.Path}/units, cronDirectory: {_dir.Path}/cron}}\n" +
            $"  backups:\n    - {{name: nightly, schedule: \"*-*-* 02:30:00\", destination: {dest}}}\n"));
        var server = await cluster.ScalarAsync<string>("select current_setting('server_version')");
        var client = PostgresServers.DefaultMajor;
        var expected = $"pg_basebackup {client}.";
        var older = $"is older than the server (PostgreSQL {server}): it cannot back it up; install PostgreSQL {cluster.Major}'s client tools (Debian/Ubuntu: postgresql-client-{cluster.Major}; RHEL: postgresql{cluster.Major}";

        var plan = await CliRunner.RunAsync("plan", file);
        Assert.Contains("backups will fail: " + expected, plan.Stdout);
        Assert.Contains(older, plan.Stdout);
        Assert.Contains("pg_verifybackup " + client + ".", plan.Stdout);

        var check = await CliRunner.RunAsync("check", file);
        Assert.Equal(2, check.ExitCode);
        Assert.Contains("FAIL    backup_tools", check.Stdout);
        Assert.Contains(older, check.Stdout);

        var run = await CliRunner.RunAsync("backup", "run", "nightly", "--manifest", file);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"backup nightly failed: {expected}", run.Stdout);
        Assert.Contains($"is older than the server (PostgreSQL {cluster.Major}): it cannot back it up; install PostgreSQL {cluster.Major}'s client tools", run.Stdout);
        Assert.Empty(Directory.GetDirectories(dest));
    }
}
