using PgState.Engine.Host;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Hostile;

/// <summary>
/// The server's OS user owns the data directory, the backup and drill directories: whatever it
/// plants there (a link, a FIFO, a lying pid file, a file under pgstate's temporary name) must never
/// make pgstate, run as root, write, chown, read or signal anything else. Each attack is made as that
/// user, the way it would be on a host; each test checks a root-owned victim is untouched.
/// </summary>
[Collection(SharedClusterA.Name)]
public class PlantedLinkTests(ClusterFixture fixture) : ResetClusterTest(fixture)
{
    private string Victim(string name, string content = "root's own\n")
    {
        var path = Path.Combine(Dir.Path, name);
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    private Task AsServerUser(params string[] command) => Cluster.AsServerUserAsync(command[0], command[1..]);

    [RootFact]
    public async Task A_link_planted_under_the_temporary_name_of_pg_hba_conf_is_not_followed()
    {
        var victim = Victim("victim-hba");
        var created = Path.Combine(Dir.Path, "created-by-root");
        // In-process, the apply's pid is this process's: its temporary names are known in advance, as a pid is on a host.
        var temp = HostFiles.TemporaryFor(Cluster.HbaPath());
        await AsServerUser("ln", "-s", victim, temp);
        var journalTemp = HostFiles.TemporaryFor(Path.Combine(Cluster.DataDirectory, ".pg_hba.conf.pgstate-journal"));
        await AsServerUser("ln", "-s", created, journalTemp);
        var file = Dir.Write("m.yaml", Cluster.Manifest("db", "  hba:\n    mode: managed-block\n    rules:\n      - {type: local, database: all, user: postgres, method: trust}"));
        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.Equal("root's own\n", File.ReadAllText(victim));
        Assert.False(File.Exists(created));
        Assert.Contains("# BEGIN pgstate", File.ReadAllText(Cluster.HbaPath()));
        Assert.Empty(Directory.GetFiles(Cluster.DataDirectory, ".*.pgstate-*"));
    }

    [RootFact]
    public async Task ADirectory_reached_through_another_users_link_is_refused_and_its_target_left_alone()
    {
        var victimDir = Path.Combine(Dir.Path, "victim-dir");
        Directory.CreateDirectory(victimDir, (UnixFileMode)0b111_101_101);
        var owned = Path.Combine(Dir.Path, "owned-by-server-user");
        Directory.CreateDirectory(owned);
        await Cluster.ChownToServerAsync(owned);
        await AsServerUser("ln", "-s", victimDir, Path.Combine(owned, "archive"));
        // The link as the last step, and as a step in the middle of the path.
        await AsServerUser("ln", "-s", Dir.Path, Path.Combine(owned, "up"));
        foreach (var path in new[] { Path.Combine(owned, "archive"), Path.Combine(owned, "up", "victim-dir") })
        {
            var file = Dir.Write("d.yaml", Cluster.Manifest("db", $"  directories:\n    - {{path: {path}, owner: postgres, group: postgres, mode: \"0700\"}}"));
            var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
            Assert.Equal(1, apply.ExitCode);
            Assert.Contains("is a symbolic link owned by postgres: pgstate follows only links root made", apply.Stderr + apply.Stdout);
            Assert.DoesNotContain("internal error", apply.Stderr);
            Assert.Equal(0u, Posix.Stat(victimDir)!.Uid);
            Assert.Equal(0b111_101_101, Posix.Stat(victimDir)!.Mode);
        }
    }

    [RootFact]
    public async Task A_job_credential_is_roots_and_a_link_in_its_place_is_replaced_never_written_through()
    {
        var credentials = Path.Combine(Dir.Path, "credentials");
        var env = new Dictionary<string, string> { ["PGSTATE_CREDENTIALS_DIR"] = credentials, ["PGSTATE_UNIT_DIR"] = Path.Combine(Dir.Path, "units"), ["LINK_TEST_PW"] = "first" };
        var file = Dir.Write("b.yaml", Cluster.Manifest("db-cred",
            $"  backupScheduling: {{pgstatePath: {PgStateBinary.Path}, manifestPath: @FILE@}}\n  backups:\n    - {{name: nightly, schedule: \"*-*-* 02:30:00\", destination: {Dir.Path}/backups, connection: {{password: {{fromEnv: LINK_TEST_PW}}}}}}"));
        File.WriteAllText(file, File.ReadAllText(file).Replace("@FILE@", file, StringComparison.Ordinal));
        Assert.Equal(0, (await CliRunner.RunAsync(["apply", "--auto-approve", file], env)).ExitCode);
        var hostDir = Path.Combine(credentials, "db-cred");
        var credential = Path.Combine(hostDir, "LINK_TEST_PW");
        Assert.Equal(0u, Posix.Stat(hostDir)!.Uid);
        var plant = await Cluster.AsServerUserAsync("ln", ["-sf", "/etc/passwd", credential], check: false);
        Assert.NotEqual(0, plant.ExitCode);    // the job's user reads its credential, cannot replace it

        // A host whose credential directory an older pgstate gave to the job's user: the link it plants is replaced, not followed.
        var victim = Victim("victim-credential");
        Posix.Chown(hostDir, Posix.User("postgres")!.Value.Uid, Posix.User("postgres")!.Value.Gid);
        await AsServerUser("ln", "-sf", victim, credential);
        env["LINK_TEST_PW"] = "second";
        var apply = await CliRunner.RunAsync(["apply", "--auto-approve", file], env);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.Equal("root's own\n", File.ReadAllText(victim));
        Assert.Equal(PosixFileKind.Regular, Posix.Stat(credential, followLinks: false)!.Kind);
        Assert.Equal("second", File.ReadAllText(credential));
        Assert.Equal(0u, Posix.Stat(hostDir)!.Uid);
    }

    [RootFact]
    public async Task A_backup_run_started_as_root_works_as_the_dataDirectory_owner_and_follows_no_planted_lock()
    {
        var backups = Path.Combine(Dir.Path, "backups");
        Directory.CreateDirectory(backups);
        await Cluster.ChownToServerAsync(backups);
        var victim = Victim("victim-lock");
        await AsServerUser("ln", "-s", victim, Path.Combine(backups, ".pgstate-backup-nightly.lock"));
        var file = Dir.Write("r.yaml", Cluster.Manifest("db", $"  backups:\n    - {{name: nightly, schedule: \"*-*-* 02:30:00\", destination: {backups}}}"));
        var run = await CliRunner.RunAsync("backup", "run", "nightly", "--manifest", file);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("cannot open the lock file", run.Stdout);
        Assert.Equal("root's own\n", File.ReadAllText(victim));

        File.Delete(Path.Combine(backups, ".pgstate-backup-nightly.lock"));
        run = await CliRunner.RunAsync("backup", "run", "nightly", "--manifest", file);
        Assert.True(run.ExitCode == 0, run.ToString());
        var postgres = Posix.User("postgres")!.Value.Uid;
        Assert.All(Directory.GetFileSystemEntries(backups), e => Assert.Equal(postgres, Posix.Stat(e, followLinks: false)!.Uid));
    }

    [RootFact]
    public async Task A_stale_drillDirectory_naming_productions_postmaster_never_stops_production()
    {
        var backups = Path.Combine(Dir.Path, "drill-backups");
        var work = Path.Combine(Dir.Path, "drill-work");
        Directory.CreateDirectory(backups);
        Directory.CreateDirectory(work);
        await Cluster.ChownToServerAsync(backups);
        await Cluster.ChownToServerAsync(work);
        var archive = Path.Combine(Dir.Path, "archive");
        Directory.CreateDirectory(archive);
        await Cluster.ChownToServerAsync(archive);
        var file = Dir.Write("d.yaml", Cluster.Manifest("db",
            $"  archiving: {{method: copy, destination: {archive}}}\n  backups:\n    - name: nightly\n      schedule: \"*-*-* 02:30:00\"\n      destination: {backups}\n" +
            $"      drill: {{schedule: \"*-*-* 04:00:00\", workDirectory: {work}, target: latest}}", restartPolicy: "allowed"));
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", file)).ExitCode);
        Assert.Equal(0, (await CliRunner.RunAsync("backup", "run", "nightly", "--manifest", file)).ExitCode);
        await Cluster.ExecAsync("select pg_switch_wal()");
        // Left by the server's user (or by a reboot): a "drill directory" whose postmaster.pid is production's, and whose pid file names no live drill.
        var stale = Path.Combine(work, ".pgstate-drill-nightly-20200101T000001Z");
        await AsServerUser("mkdir", "-p", Path.Combine(stale, "data"));
        await AsServerUser("cp", Path.Combine(Cluster.DataDirectory, "postmaster.pid"), Path.Combine(stale, "data", "postmaster.pid"));
        await AsServerUser("cp", Path.Combine(Cluster.DataDirectory, "PG_VERSION"), Path.Combine(stale, "data", "PG_VERSION"));
        await AsServerUser("sh", "-c", $"echo 999999 > {stale}/pid");
        var productionPid = File.ReadAllLines(Path.Combine(Cluster.DataDirectory, "postmaster.pid"))[0];

        var drill = await CliRunner.RunAsync("restore", "drill", "nightly", "--manifest", file);
        Assert.True(drill.ExitCode == 0, drill.ToString());
        Assert.Equal(1, await Cluster.ScalarAsync<int>("select 1"));
        Assert.Equal(productionPid, File.ReadAllLines(Path.Combine(Cluster.DataDirectory, "postmaster.pid"))[0]);
        Assert.DoesNotContain("received immediate shutdown request", File.ReadAllText(Cluster.LogFile));
        Assert.False(Directory.Exists(stale));
    }

    [Fact]
    public async Task Hostile_journal_and_status_files_are_clean_errors_never_a_hang_or_a_crash()
    {
        var journal = Path.Combine(Cluster.DataDirectory, ".pg_hba.conf.pgstate-journal");
        var file = Dir.Write("j.yaml", Cluster.Manifest("db", "  hba:\n    mode: managed-block\n    rules:\n      - {type: local, database: all, user: postgres, method: trust}"));
        try
        {
            File.WriteAllText(journal, "pgstate hba journal 1\npid 99999999999\nstate written\n");
            var plan = await CliRunner.RunAsync("plan", file);
            Assert.DoesNotContain("internal error", plan.Stderr);
            File.Delete(journal);
            await ProcessRunner.Default.RunAsync("mkfifo", [journal]);
            var timed = Task.Run(() => CliRunner.RunAsync("plan", file));
            Assert.Same(timed, await Task.WhenAny(timed, Task.Delay(TimeSpan.FromSeconds(30))));
            Assert.DoesNotContain("internal error", (await timed).Stderr);
        }
        finally
        {
            File.Delete(journal);
        }

        var backups = Path.Combine(Dir.Path, "status-backups");
        Directory.CreateDirectory(backups);
        await ProcessRunner.Default.RunAsync("mkfifo", [Path.Combine(backups, ".pgstate-status-nightly.json")]);
        var manifest = Dir.Write("s.yaml", Cluster.Manifest("db", $"  backups:\n    - {{name: nightly, schedule: \"*-*-* 02:30:00\", destination: {backups}}}"));
        var check = Task.Run(() => CliRunner.RunAsync("check", manifest));
        Assert.Same(check, await Task.WhenAny(check, Task.Delay(TimeSpan.FromSeconds(30))));
        var result = await check;
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("is not a regular file", result.Stdout);
    }

    [Fact]
    public async Task A_manifests_hba_file_that_is_not_the_servers_is_refused_and_left_unchanged()
    {
        var other = Victim("not-hba.conf", "root:x:0:0:root:/root:/bin/bash\n");
        var file = Dir.Write("h.yaml", Cluster.Manifest("db", $"  hba:\n    file: {other}\n    mode: managed-block\n    rules:\n      - {{type: local, database: all, user: postgres, method: trust}}"));
        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.Equal(1, apply.ExitCode);
        Assert.Contains("is not the server's pg_hba.conf", apply.Stderr + apply.Stdout);
        Assert.Equal("root:x:0:0:root:/root:/bin/bash\n", File.ReadAllText(other));
    }
}
