using PgState.Engine.Host;
using PgState.Modules.Backups;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Packaging;

/// <summary>
/// The .deb as a user gets it, installed on this machine and purged afterwards: /usr/bin/pgstate,
/// its man page, completion and drift units; then two hosts' backup schedules applied into one unit
/// folder and each job run exactly as systemd would start it.
/// </summary>
[Collection(MachineWide.Name)]
public class InstalledPackageTests
{
    private const string Installed = "/usr/bin/pgstate";
    private const string Password = "s3cr%t $pass'word";

    [InstalledPackageFact]
    public async Task Installed_deb_runs_two_hosts_scheduled_backups_as_systemd_would_and_a_root_run_does_not_break_them()
    {
        await using var cluster = await ScratchCluster.StartAsync();
        using var dir = new TempDir();
        var env = new Dictionary<string, string>
        {
            ["PGSTATE_UNIT_DIR"] = Path.Combine(dir.Path, "units"),
            ["PGSTATE_CRON_DIR"] = Path.Combine(dir.Path, "cron"),
            ["PGSTATE_LOCK_DIR"] = Path.Combine(dir.Path, "lock"),
            ["PGSTATE_CONFIG_DIR"] = Path.Combine(dir.Path, "etc"),
            ["PGSTATE_CREDENTIALS_DIR"] = Path.Combine(dir.Path, "credentials"),
            ["PGSTATE_STATE_DIR"] = Path.Combine(dir.Path, "state"),
        };
        var withPassword = new Dictionary<string, string>(env) { ["PG_BACKUP_PASSWORD"] = Password };
        var manifest = Path.Combine(dir.Path, "hosts.yaml");
        string Destination(string host) => Path.Combine(dir.Path, "backups-" + host);
        string Host(string name, string rules) => cluster.Manifest(name, rules +
            $"  directories:\n    - {{path: {Destination(name)}, owner: postgres, group: postgres, mode: \"0700\"}}\n" +
            $"  backupScheduling: {{manifestPath: {manifest}}}\n" +
            $"  backups:\n    - name: nightly\n      schedule: \"*-*-* 02:30:00\"\n      destination: {Destination(name)}\n" +
            "      connection: {user: backup_user, password: {fromEnv: PG_BACKUP_PASSWORD}}\n");
        File.WriteAllText(manifest, Host("pkg-a",
                "  hba:\n    rules:\n      - {type: local, database: all, user: postgres, method: trust}\n" +
                "      - {type: local, database: replication, user: backup_user, method: scram-sha-256}\n" +
                "  roles:\n    - {name: backup_user, login: true, replication: true, password: {fromEnv: PG_BACKUP_PASSWORD}}\n") +
            "\n---\n" + Host("pkg-b", ""));

        await InstalledPackage.InstallAsync();
        try
        {
            var version = await ProcessRunner.Default.RunAsync(Installed, ["--version"]);
            Assert.Matches(@"^\d+\.\d+\.\d+", version.StandardOutput);
            Assert.True(File.Exists("/usr/share/man/man1/pgstate.1.gz"));
            Assert.True(File.Exists("/usr/share/doc/pgstate/copyright"));
            var units = new[] { "/usr/lib/systemd/system/pgstate-drift.service", "/usr/lib/systemd/system/pgstate-drift.timer" };
            var verify = await ProcessRunner.Default.RunAsync("systemd-analyze", ["verify", "--man=no", .. units], check: false);
            Assert.True(verify.ExitCode == 0, verify.StandardError);
            var completion = await ProcessRunner.Default.RunAsync("bash", ["-c",
                "source /usr/share/bash-completion/completions/pgstate; COMP_WORDS=(pgstate backup r); COMP_CWORD=2; COMP_LINE='pgstate backup r'; COMP_POINT=16; _pgstate; echo \"${COMPREPLY[*]}\""]);
            Assert.Equal("run", completion.StandardOutput.Trim());

            // The plan no longer warns that the jobs' binary or manifest is missing: both are where the units say.
            var plan = await PgStateBinaryAt(Installed, ["plan", manifest], withPassword);
            Assert.True(plan.ExitCode == 2, plan.StandardOutput + plan.StandardError);
            Assert.DoesNotContain("not an executable file", plan.StandardOutput);
            Assert.DoesNotContain("does not exist on this host", plan.StandardOutput);
            var apply = await PgStateBinaryAt(Installed, ["apply", "--auto-approve", manifest], withPassword);
            Assert.True(apply.ExitCode == 0, apply.StandardOutput + apply.StandardError);
            Assert.Equal(0, (await PgStateBinaryAt(Installed, ["plan", manifest], withPassword)).ExitCode);
            Assert.Equal(["pgstate-backup-pkg-a-nightly.service", "pgstate-backup-pkg-a-nightly.timer", "pgstate-backup-pkg-b-nightly.service", "pgstate-backup-pkg-b-nightly.timer"],
                Directory.GetFiles(env["PGSTATE_UNIT_DIR"]).Select(Path.GetFileName).Order(StringComparer.Ordinal));

            foreach (var host in new[] { "pkg-a", "pkg-b" })
            {
                var service = Path.Combine(env["PGSTATE_UNIT_DIR"], $"pgstate-backup-{host}-nightly.service");
                Assert.Contains($"ExecStart={Installed} backup run nightly --manifest {manifest} --host {host}\n", File.ReadAllText(service));
                var run = await ScheduledJob.RunServiceAsync(service);
                Assert.True(run.ExitCode == 0, run.StandardOutput + run.StandardError);
                Assert.Contains("pg_verifybackup passed", run.StandardOutput);
                var backup = Assert.Single(BackupRunner.List(Destination(host)));
                Assert.True(backup.Verified);
                AssertOwnedByPostgres(Destination(host));
            }
            var check = await PgStateBinaryAt(Installed, ["check", manifest], env);
            Assert.True(check.ExitCode == 0, check.StandardOutput + check.StandardError);
            Assert.Equal(2, check.StandardOutput.Split('\n').Count(l => l.StartsWith("  OK      backup:nightly", StringComparison.Ordinal)));

            // A root run (an operator, by hand, with nothing in the environment) and then the schedule again.
            await Task.Delay(1100 - DateTime.UtcNow.Millisecond);
            var byHand = await ProcessRunner.Default.RunAsync("env", ["-i", "PATH=" + ScheduledJob.SystemdPath, $"PGSTATE_CREDENTIALS_DIR={env["PGSTATE_CREDENTIALS_DIR"]}",
                Installed, "backup", "run", "nightly", "--manifest", manifest, "--host", "pkg-a"], check: false);
            Assert.True(byHand.ExitCode == 0, byHand.StandardOutput + byHand.StandardError);
            AssertOwnedByPostgres(Destination("pkg-a"));
            await Task.Delay(1100 - DateTime.UtcNow.Millisecond);
            var again = await ScheduledJob.RunServiceAsync(Path.Combine(env["PGSTATE_UNIT_DIR"], "pgstate-backup-pkg-a-nightly.service"));
            Assert.True(again.ExitCode == 0, again.StandardOutput + again.StandardError);
            Assert.Equal(3, BackupRunner.List(Destination("pkg-a")).Count(b => b.Verified));
            AssertOwnedByPostgres(Destination("pkg-a"));
            Assert.Equal(0, (await PgStateBinaryAt(Installed, ["check", manifest], env)).ExitCode);
        }
        finally
        {
            await InstalledPackage.PurgeAsync();
        }
    }

    private static Task<ProcessResult> PgStateBinaryAt(string binary, IReadOnlyList<string> args, IReadOnlyDictionary<string, string> environment) =>
        ProcessRunner.Default.RunAsync(binary, args, TimeSpan.FromMinutes(2), check: false, environment: environment.ToDictionary(e => e.Key, e => (string?)e.Value));

    private static void AssertOwnedByPostgres(string directory)
    {
        var uid = Posix.User("postgres")!.Value.Uid;
        foreach (var entry in Directory.EnumerateFileSystemEntries(directory, "*", SearchOption.AllDirectories).Prepend(directory))
        {
            Assert.True(Posix.Stat(entry, followLinks: false)!.Uid == uid, $"{entry} is not owned by postgres");
        }
    }
}
