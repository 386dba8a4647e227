using PgState.Engine.Host;
using PgState.Modules.Backups;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Backups;

/// <summary>
/// Backup schedules as they run unattended: files named and owned per host, the job run exactly as
/// systemd or cron would start it (its user, its credentials, nothing else in its environment),
/// failures recorded where check sees them, files of the wrong owner named with the fix.
/// </summary>
[Collection(SharedClusterB.Name)]
public class ScheduledJobTests(ClusterFixture fixture) : IDisposable, IAsyncLifetime
{
    private const string Password = "s3cr%t $pass'word";

    private readonly ScratchCluster _cluster = fixture.Cluster;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Each test from a reset cluster: a test that declares pg_hba rules leaves no replication rule for postgres.</summary>
    public async Task InitializeAsync()
    {
        await fixture.BeginAsync(GetType());
        await _cluster.ResetAllAsync();
    }

    Task IAsyncLifetime.DisposeAsync() => Task.CompletedTask;

    private string Units => Path.Combine(_dir.Path, "units");

    private string Cron => Path.Combine(_dir.Path, "cron");

    private string CredentialsRoot => Path.Combine(_dir.Path, "credentials");

    /// <summary>This test's host directories, as apply and root runs see them.</summary>
    private Dictionary<string, string> Environment(bool withPassword = true)
    {
        var env = new Dictionary<string, string>
        {
            ["PGSTATE_UNIT_DIR"] = Units,
            ["PGSTATE_CRON_DIR"] = Cron,
            ["PGSTATE_CREDENTIALS_DIR"] = CredentialsRoot,
        };
        if (withPassword)
        {
            env["PG_BACKUP_PASSWORD"] = Password;
        }
        return env;
    }

    private string Destination(string host) => Path.Combine(_dir.Path, "backups-" + host);

    /// <summary>One host's document: a backup "nightly" into its own destination, run by the binary that ships.</summary>
    private string Host(string name, string scheduler = "systemd", bool password = false) =>
        _cluster.Manifest(name,
            (password
                ? "  hba:\n    rules:\n      - {type: local, database: all, user: postgres, method: trust}\n" +
                  "      - {type: local, database: replication, user: backup_user, method: scram-sha-256}\n" +
                  "  roles:\n    - {name: backup_user, login: true, replication: true, password: {fromEnv: PG_BACKUP_PASSWORD}}\n"
                : "") +
            $"  directories:\n    - {{path: {Destination(name)}, owner: {ScratchCluster.ServerUser}, group: {ScratchCluster.ServerUser}, mode: \"0700\"}}\n" +
            $"  backupScheduling: {{pgstatePath: {PgStateBinary.Path}, manifestPath: @FILE@}}\n" +
            $"  backups:\n    - name: nightly\n      schedule: \"*-*-* 02:30:00\"\n      destination: {Destination(name)}\n      scheduler: {scheduler}\n" +
            (password ? "      connection: {user: backup_user, password: {fromEnv: PG_BACKUP_PASSWORD}}\n" : ""));

    private string File1(string file, params string[] documents)
    {
        var path = Path.Combine(_dir.Path, file);
        File.WriteAllText(path, string.Join("\n---\n", documents).Replace("@FILE@", path, StringComparison.Ordinal));
        return path;
    }

    private static void AssertOwnedByServerUser(string directory)
    {
        var uid = Posix.User(ScratchCluster.ServerUser)!.Value.Uid;
        foreach (var entry in Directory.EnumerateFileSystemEntries(directory, "*", SearchOption.AllDirectories).Prepend(directory))
        {
            Assert.True(Posix.Stat(entry, followLinks: false)!.Uid == uid, $"{entry} is not owned by {ScratchCluster.ServerUser}");
        }
    }

    private static BackupStatus Status(string destination) => BackupRunner.ReadStatus(Path.Combine(destination, ".pgstate-status-nightly.json"))!;

    [Fact]
    public async Task Second_host_in_the_same_unit_folder_neither_replaces_nor_prunes_the_first()
    {
        var a = File1("a.yaml", Host("db-a"));
        var b = File1("b.yaml", Host("db-b"));
        Assert.Equal(0, (await CliRunner.RunAsync(["apply", "--auto-approve", a], Environment())).ExitCode);

        var planB = await CliRunner.RunAsync(["plan", b], Environment());
        Assert.Equal(2, planB.ExitCode);
        Assert.Contains("+ backups.nightly.service = \"" + Path.Combine(Units, "pgstate-backup-db-b-nightly.service"), planB.Stdout);
        Assert.DoesNotContain("- backups", planB.Stdout);
        Assert.DoesNotContain("no longer in the manifest", planB.Stdout);
        Assert.Equal(0, (await CliRunner.RunAsync(["apply", "--auto-approve", b], Environment())).ExitCode);
        Assert.Equal(0, (await CliRunner.RunAsync(["plan", a], Environment())).ExitCode);
        Assert.Equal(["pgstate-backup-db-a-nightly.service", "pgstate-backup-db-a-nightly.timer", "pgstate-backup-db-b-nightly.service", "pgstate-backup-db-b-nightly.timer"],
            Directory.GetFiles(Units).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.StartsWith("# Written by pgstate for host db-b from manifest " + b, File.ReadAllText(Path.Combine(Units, "pgstate-backup-db-b-nightly.service")));

        // db-a drops its schedule: only db-a's files go.
        var aWithout = File1("a.yaml", _cluster.Manifest("db-a", $"  backupScheduling: {{pgstatePath: {PgStateBinary.Path}}}\n  backups: []"));
        var prune = await CliRunner.RunAsync(["plan", aWithout], Environment());
        Assert.Contains("- backups.nightly.service", prune.Stdout);
        Assert.Contains("- backups.nightly.timer", prune.Stdout);
        Assert.Equal(0, (await CliRunner.RunAsync(["apply", "--auto-approve", aWithout], Environment())).ExitCode);
        Assert.Equal(["pgstate-backup-db-b-nightly.service", "pgstate-backup-db-b-nightly.timer"], Directory.GetFiles(Units).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // A file with the name db-c would use but written by someone else is left alone, with a warning.
        var foreign = Path.Combine(Units, "pgstate-backup-db-c-nightly.service");
        File.WriteAllText(foreign, "[Service]\nExecStart=/bin/true\n");
        var c = File1("c.yaml", Host("db-c"));
        var planC = await CliRunner.RunAsync(["plan", c], Environment());
        Assert.Contains($"{foreign} exists and was not written by pgstate for host db-c: pgstate leaves it alone", planC.Stdout);
        await CliRunner.RunAsync(["apply", "--auto-approve", c], Environment());
        Assert.Equal("[Service]\nExecStart=/bin/true\n", File.ReadAllText(foreign));
    }

    [RootFact]
    public async Task Two_hosts_in_one_manifest_each_run_their_own_backup_as_systemd_and_cron_start_them()
    {
        var file = File1("two.yaml", Host("db-a", password: true), Host("db-b", scheduler: "cron", password: true));
        var apply = await CliRunner.RunAsync(["apply", "--auto-approve", file], Environment());
        Assert.True(apply.ExitCode == 0, apply.ToString());
        var service = Path.Combine(Units, "pgstate-backup-db-a-nightly.service");
        var cron = Path.Combine(Cron, "pgstate-backup-db-b-nightly");
        Assert.Contains($"ExecStart={PgStateBinary.Path} backup run nightly --manifest {file} --host db-a\n", File.ReadAllText(service));
        Assert.Contains($"LoadCredential=PG_BACKUP_PASSWORD:{CredentialsRoot}/db-a/PG_BACKUP_PASSWORD\n", File.ReadAllText(service));
        Assert.Contains($" --host db-b --credentials-directory {CredentialsRoot}/db-b\n", File.ReadAllText(cron));
        Assert.DoesNotContain("s3cr", File.ReadAllText(service) + File.ReadAllText(cron));
        foreach (var host in new[] { "db-a", "db-b" })
        {
            var credential = Path.Combine(CredentialsRoot, host, "PG_BACKUP_PASSWORD");
            Assert.Equal(Password, File.ReadAllText(credential));
            // root's file in root's directory, readable by the job's group: the job reads it, cannot replace it or plant a link there.
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.GroupRead, File.GetUnixFileMode(credential));
            Assert.Equal(0u, Posix.Stat(credential)!.Uid);
            Assert.Equal(Posix.User(ScratchCluster.ServerUser)!.Value.Gid, Posix.Stat(credential)!.Gid);
            Assert.Equal(0u, Posix.Stat(Path.GetDirectoryName(credential)!)!.Uid);
            Assert.Equal((UnixFileMode)0b111_101_000, File.GetUnixFileMode(Path.GetDirectoryName(credential)!));
        }

        var systemd = await ScheduledJob.RunServiceAsync(service);
        Assert.True(systemd.ExitCode == 0, systemd.StandardOutput + systemd.StandardError);
        Assert.True(Status(Destination("db-a")).Verified);
        Assert.False(Directory.Exists(Destination("db-b")) && BackupRunner.List(Destination("db-b")).Count > 0, "db-a's job wrote into db-b's destination");
        var fromCron = await ScheduledJob.RunCronAsync(cron);
        Assert.True(fromCron.ExitCode == 0, fromCron.StandardOutput + fromCron.StandardError);
        Assert.True(Status(Destination("db-b")).Verified);
        Assert.Single(BackupRunner.List(Destination("db-a")));
        AssertOwnedByServerUser(Destination("db-a"));
        AssertOwnedByServerUser(Destination("db-b"));

        // Without --host the name is ambiguous in this file: refused, naming both hosts.
        var ambiguous = await CliRunner.RunAsync(["backup", "run", "nightly", "--manifest", file], Environment());
        Assert.Equal(1, ambiguous.ExitCode);
        Assert.Contains("backup 'nightly' is declared for hosts db-a, db-b: name one with --host", ambiguous.Stderr);
    }

    [RootFact]
    public async Task A_failed_run_is_recorded_so_check_fails_and_an_unreadable_status_fails_check()
    {
        var file = File1("one.yaml", Host("db-f", password: true));
        Assert.Equal(0, (await CliRunner.RunAsync(["apply", "--auto-approve", file], Environment())).ExitCode);
        var service = Path.Combine(Units, "pgstate-backup-db-f-nightly.service");
        Assert.Equal(0, (await ScheduledJob.RunServiceAsync(service)).ExitCode);
        Assert.Equal(0, (await CliRunner.RunAsync(["check", file], Environment())).ExitCode);

        // A wrong password: pg_basebackup fails, the job says so, and check fails on the recorded run.
        File.WriteAllText(Path.Combine(CredentialsRoot, "db-f", "PG_BACKUP_PASSWORD"), "wrong");
        var failed = await ScheduledJob.RunServiceAsync(service);
        Assert.Equal(1, failed.ExitCode);
        Assert.Contains("password authentication failed for user \"backup_user\"", failed.StandardOutput);
        Assert.Contains("password authentication failed", Status(Destination("db-f")).Error);
        var check = await CliRunner.RunAsync(["check", file], Environment());
        Assert.Equal(2, check.ExitCode);
        Assert.Contains("FAIL    backup:nightly         the last run of backup nightly", check.Stdout);

        // Started with no way to read the secret at all: a clear error, recorded too, never an internal error.
        var bare = await ScheduledJob.RunAsync(ScratchCluster.ServerUser, ScratchCluster.ServerUser, new Dictionary<string, string> { ["PATH"] = ScheduledJob.SystemdPath },
            [PgStateBinary.Path, "backup", "run", "nightly", "--manifest", file, "--host", "db-f"], "/", null);
        Assert.Equal(1, bare.ExitCode);
        Assert.Contains("backup nightly failed: environment variable 'PG_BACKUP_PASSWORD' (a secret) is not set and /etc/pgstate/credentials/db-f/PG_BACKUP_PASSWORD does not exist", bare.StandardOutput);
        Assert.DoesNotContain("internal error", bare.StandardOutput + bare.StandardError);
        Assert.Contains("PG_BACKUP_PASSWORD", Status(Destination("db-f")).Error);
        Assert.Equal(2, (await CliRunner.RunAsync(["check", file], Environment())).ExitCode);

        File.WriteAllText(Path.Combine(Destination("db-f"), ".pgstate-status-nightly.json"), "{ not json");
        var unreadable = await CliRunner.RunAsync(["check", file], Environment());
        Assert.Equal(2, unreadable.ExitCode);
        Assert.Contains("the status of backup nightly cannot be read", unreadable.Stdout);
    }

    [RootFact]
    public async Task Root_run_leaves_nothing_the_scheduled_run_cannot_use_and_a_wrong_owner_is_named_with_the_fix()
    {
        var file = File1("one.yaml", Host("db-r", password: true));
        Assert.Equal(0, (await CliRunner.RunAsync(["apply", "--auto-approve", file], Environment())).ExitCode);
        var service = Path.Combine(Units, "pgstate-backup-db-r-nightly.service");

        // As root, with no password in the environment: the credential apply wrote is enough.
        var asRoot = await PgStateBinary.RunAsync(["backup", "run", "nightly", "--manifest", file, "--host", "db-r"], Environment(withPassword: false));
        Assert.True(asRoot.ExitCode == 0, asRoot.StandardOutput + asRoot.StandardError);
        AssertOwnedByServerUser(Destination("db-r"));
        await Task.Delay(1100 - DateTime.UtcNow.Millisecond);
        var scheduled = await ScheduledJob.RunServiceAsync(service);
        Assert.True(scheduled.ExitCode == 0, scheduled.StandardOutput + scheduled.StandardError);
        Assert.Equal(2, BackupRunner.List(Destination("db-r")).Count(b => b.Verified));

        // Files someone else left (a root-owned lock and status, not made by pgstate) are named, with the command that fixes them.
        var lockFile = Path.Combine(Destination("db-r"), ".pgstate-backup-nightly.lock");
        var statusFile = Path.Combine(Destination("db-r"), ".pgstate-status-nightly.json");
        Posix.Chown(lockFile, 0, 0);
        Posix.Chown(statusFile, 0, 0);
        var wrongOwner = await ScheduledJob.RunServiceAsync(service);
        Assert.Equal(1, wrongOwner.ExitCode);
        Assert.Contains($"backup nightly runs as {ScratchCluster.ServerUser}, but these are not {ScratchCluster.ServerUser}'s: {lockFile} (owned by root), {statusFile} (owned by root)", wrongOwner.StandardOutput);
        Assert.Contains($"Fix: chown -R {ScratchCluster.ServerUser}: {lockFile} {statusFile}", wrongOwner.StandardOutput);
        Assert.DoesNotContain("internal error", wrongOwner.StandardOutput + wrongOwner.StandardError);

        // A destination the job's user cannot create: the message says how to declare it.
        var locked = Path.Combine(_dir.Path, "root-only");
        Directory.CreateDirectory(locked);
        File.SetUnixFileMode(locked, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var elsewhere = File1("elsewhere.yaml", _cluster.Manifest("db-e",
            $"  backupScheduling: {{pgstatePath: {PgStateBinary.Path}, manifestPath: @FILE@}}\n  backups:\n    - {{name: nightly, schedule: \"*-*-* 02:30:00\", destination: {locked}/backups}}"));
        Assert.Equal(0, (await CliRunner.RunAsync(["apply", "--auto-approve", elsewhere], Environment())).ExitCode);
        var asJob = await ScheduledJob.RunServiceAsync(Path.Combine(Units, "pgstate-backup-db-e-nightly.service"));
        Assert.Equal(1, asJob.ExitCode);
        Assert.Contains($"backup nightly runs as {ScratchCluster.ServerUser}, who cannot create or read {locked}/backups. Fix: declare it in spec.directories with owner {ScratchCluster.ServerUser}", asJob.StandardOutput);
        Assert.DoesNotContain("internal error", asJob.StandardOutput + asJob.StandardError);
    }

    [Fact]
    public async Task Backup_run_on_a_terminal_shows_pg_basebackup_progress_on_stderr_and_not_otherwise()
    {
        var file = File1("progress.yaml", Host("db-p"));
        Directory.CreateDirectory(Destination("db-p"));
        await _cluster.ChownToServerAsync(Destination("db-p"));
        var terminal = await CliRunner.RunAsync(["backup", "run", "nightly", "--manifest", file], Environment(), terminal: true);
        Assert.True(terminal.ExitCode == 0, terminal.ToString());
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(terminal.Stderr, @"\d+/\d+ kB \(100%\)"), terminal.Stderr);
        Assert.DoesNotContain(" kB (", terminal.Stdout);
        await Task.Delay(1100 - DateTime.UtcNow.Millisecond);
        var piped = await CliRunner.RunAsync(["backup", "run", "nightly", "--manifest", file], Environment());
        Assert.True(piped.ExitCode == 0, piped.ToString());
        Assert.DoesNotContain(" kB (", piped.Stderr);
    }
}
