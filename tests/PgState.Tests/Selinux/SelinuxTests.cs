using PgState.Engine.Host;
using PgState.Modules.Selinux;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Selinux;

/// <summary>
/// Real semanage, matchpathcon and setfiles on a host where SELinux is disabled but a policy is
/// installed: the policy store and labels are written for real. Every rule a test adds is removed.
/// </summary>
[Collection(SharedClusterB.Name)]
public class SelinuxTests(ClusterFixture fixture) : IAsyncLifetime
{
    private readonly ScratchCluster _cluster = fixture.Cluster;
    private readonly string _root = Directory.CreateTempSubdirectory("pgstate-selinux-").FullName;
    private readonly TempDir _dir = new();

    public Task InitializeAsync() => fixture.BeginAsync(GetType());

    public async Task DisposeAsync()
    {
        // Remove every rule this test class created (all live under its own temporary root).
        var local = FileContexts.ParseLocalFile(SelinuxPolicy.Read()?.ReadLocal() ?? "");
        foreach (var entry in local.Where(e => e.Path.StartsWith(_root, StringComparison.Ordinal)))
        {
            await ProcessRunner.Default.RunAsync("semanage", ["fcontext", "-d", "-f", FileContexts.Letter(entry.FileType), entry.Path], TimeSpan.FromMinutes(2), check: false);
        }
        Directory.Delete(_root, recursive: true);
        _dir.Dispose();
    }

    private static async Task<string> LabelAsync(string path) =>
        (await ProcessRunner.Default.RunAsync("stat", ["-c", "%C", path])).StandardOutput.Trim();

    private static async Task SetLabelAsync(string path, string type) =>
        await ProcessRunner.Default.RunAsync("setfattr", ["-n", "security.selinux", "-v", $"system_u:object_r:{type}:s0", path]);

    private string Manifest(string name, string body) => _dir.Write(name, _cluster.Manifest("db", body));

    [SelinuxFact]
    public async Task Mislabelled_directory_gets_the_rule_and_every_file_is_relabelled()
    {
        var archive = Path.Combine(_root, "arch");
        Directory.CreateDirectory(Path.Combine(archive, "sub"));
        foreach (var f in new[] { "000000010000000000000001", "000000010000000000000002", "sub/x" })
        {
            File.WriteAllText(Path.Combine(archive, f), "wal");
        }
        foreach (var p in Directory.EnumerateFileSystemEntries(archive, "*", SearchOption.AllDirectories).Append(archive))
        {
            await SetLabelAsync(p, "default_t");
        }
        var rule = archive + "(/.*)?";
        var file = Manifest("label.yaml",
            $"  directories:\n    - {{path: {archive}, owner: postgres, group: postgres, mode: \"0700\"}}\n" +
            $"  selinux:\n    labelsWhenDisabled: manage\n    fileContexts:\n      - {{path: \"{rule}\", type: postgresql_db_t}}");

        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains($"+ selinux.fcontext[\"{rule}\"] = \"system_u:object_r:postgresql_db_t:s0\"", plan.Stdout);
        Assert.Contains($"~ selinux.labels[\"{archive}\"]: \"5 file(s) mislabelled: 5 × default_t → postgresql_db_t\" -> \"postgresql_db_t\"", plan.Stdout);
        Assert.Contains($"~ directories[\"{archive}\"]", plan.Stdout);

        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.Contains("5 file(s) relabelled", apply.Stderr);
        Assert.Contains($"{rule}    system_u:object_r:postgresql_db_t:s0", SelinuxPolicy.Read()!.ReadLocal());

        foreach (var p in Directory.EnumerateFileSystemEntries(archive, "*", SearchOption.AllDirectories).Append(archive))
        {
            Assert.Equal("system_u:object_r:postgresql_db_t:s0", await LabelAsync(p));
        }
        var again = await CliRunner.RunAsync("plan", file);
        Assert.True(again.ExitCode == 0, again.ToString());
    }

    [SelinuxFact]
    public async Task Absent_removes_the_listed_rule_and_leaves_unlisted_rules_alone()
    {
        var listed = Path.Combine(_root, "listed") + "(/.*)?";
        var unlisted = Path.Combine(_root, "unlisted") + "(/.*)?";
        await ProcessRunner.Default.RunAsync("semanage", ["fcontext", "-a", "-t", "postgresql_log_t", unlisted], TimeSpan.FromMinutes(2));
        var present = Manifest("present.yaml", $"  selinux:\n    fileContexts:\n      - {{path: \"{listed}\", type: postgresql_db_t}}");
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", present)).ExitCode);
        Assert.Contains(listed, SelinuxPolicy.Read()!.ReadLocal());

        var absent = Manifest("absent.yaml", $"  selinux:\n    fileContexts:\n      - {{path: \"{listed}\", type: postgresql_db_t, state: absent}}");
        var plan = await CliRunner.RunAsync("plan", absent);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains($"- selinux.fcontext[\"{listed}\"]", plan.Stdout);
        Assert.DoesNotContain("unlisted", plan.Stdout);
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", absent)).ExitCode);

        var local = SelinuxPolicy.Read()!.ReadLocal();
        Assert.DoesNotContain(listed, local);
        Assert.Contains($"{unlisted}    system_u:object_r:postgresql_log_t:s0", local);
        Assert.Equal(0, (await CliRunner.RunAsync("plan", absent)).ExitCode);
    }

    [SelinuxFact]
    public async Task Owner_and_mode_drift_on_a_managed_directory_is_planned_and_fixed()
    {
        var path = Path.Combine(_root, "backups");
        var file = Manifest("dirs.yaml", $"  directories:\n    - {{path: {path}, owner: postgres, mode: \"0700\"}}");
        var create = await CliRunner.RunAsync("plan", file);
        Assert.Contains($"+ directories[\"{path}\"] = \"postgres:postgres 0700\"", create.Stdout);
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", file)).ExitCode);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(path));

        await ProcessRunner.Default.RunAsync("chown", ["root:root", path]);
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        var drift = await CliRunner.RunAsync("plan", file);
        Assert.True(drift.ExitCode == 2, drift.ToString());
        Assert.Contains($"~ directories[\"{path}\"]: \"root:root 0755\" -> \"postgres:postgres 0700\"", drift.Stdout);
        Assert.Contains("chown + chmod", drift.Stdout);
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", file)).ExitCode);
        Assert.Equal("postgres 700", (await ProcessRunner.Default.RunAsync("stat", ["-c", "%U %a", path])).StandardOutput.Trim());
        Assert.Equal(0, (await CliRunner.RunAsync("plan", file)).ExitCode);
    }

    [SelinuxFact]
    public async Task Destination_label_warning_appears_without_a_rule_and_goes_with_it()
    {
        var destination = Path.Combine(_root, "wal");
        var archiving = $"  archiving:\n    method: copy\n    destination: {destination}\n";
        // SELinux is disabled on this machine: the warning is only given where labels are managed.
        var disabled = await CliRunner.RunAsync("plan", Manifest("disabled.yaml", archiving));
        Assert.DoesNotContain("cannot write", disabled.Stdout);
        archiving += "  selinux:\n    labelsWhenDisabled: manage\n";
        var without = await CliRunner.RunAsync("plan", Manifest("nowarn.yaml", archiving));
        Assert.Contains($"the archive destination {destination} gets ", without.Stdout);
        Assert.Contains("which postgresql_t cannot write", without.Stdout);
        Assert.Contains($"Add to spec.selinux.fileContexts: {{path: \"{destination}(/.*)?\", type: postgresql_db_t}}", without.Stdout);

        var with = await CliRunner.RunAsync("plan", Manifest("warn.yaml",
            archiving + $"    fileContexts:\n      - {{path: \"{destination}(/.*)?\", type: postgresql_db_t}}"));
        Assert.DoesNotContain("cannot write", with.Stdout);
    }

    [SelinuxFact]
    public async Task Labels_are_not_drift_while_selinux_is_disabled_but_file_contexts_are()
    {
        var archive = Path.Combine(_root, "quiet");
        Directory.CreateDirectory(archive);
        File.WriteAllText(Path.Combine(archive, "000000010000000000000009"), "wal");
        var rule = archive + "(/.*)?";
        var file = Manifest("quiet.yaml",
            $"  directories:\n    - {{path: {archive}, owner: postgres, group: postgres, mode: \"0700\"}}\n" +
            $"  selinux:\n    fileContexts:\n      - {{path: \"{rule}\", type: postgresql_db_t}}");
        await ProcessRunner.Default.RunAsync("chown", ["-R", "postgres:postgres", archive]);
        File.SetUnixFileMode(archive, (UnixFileMode)0b111_000_000);
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains($"+ selinux.fcontext[\"{rule}\"]", plan.Stdout);
        Assert.DoesNotContain("selinux.labels[", plan.Stdout);
        Assert.Contains("SELinux is disabled here, so files get no labels and pgstate does not count them as drift", plan.Stdout);
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", file)).ExitCode);
        // New unlabelled files (the next WAL segment) keep the plan empty.
        File.WriteAllText(Path.Combine(archive, "00000001000000000000000A"), "wal");
        Assert.Equal(0, (await CliRunner.RunAsync("plan", file)).ExitCode);
    }

    [SelinuxFact]
    public async Task Expected_labels_read_in_process_agree_with_matchpathcon()
    {
        string[] paths = ["/var/lib/postgresql", "/var/lib/pgsql/data", "/etc/passwd", "/var/log/postgresql", "/tmp", "/usr/bin/psql", "/run/postgresql", "/srv/anything", _root];
        var policy = SelinuxPolicy.Read()!;
        var matchpathcon = await ProcessRunner.Default.RunAsync("matchpathcon", ["-n", .. paths]);
        var expected = matchpathcon.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var ours = LabelLookup.Lookup(policy.FileContextsPath, paths);
        Assert.Equal(expected, ours);
    }

    [SelinuxFact]
    public async Task Shell_metacharacters_reach_semanage_intact_and_listing_agrees_with_the_file()
    {
        var rule = Path.Combine(_root, "odd") + "/(wal|xlog)[0-9]*;&$x(/.*)?";
        var file = Manifest("odd.yaml", $"  selinux:\n    fileContexts:\n      - {{path: '{rule}', type: postgresql_db_t, fileType: directory}}");
        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.Contains($"{rule} -d system_u:object_r:postgresql_db_t:s0", SelinuxPolicy.Read()!.ReadLocal());

        var listing = await ProcessRunner.Default.RunAsync("semanage", ["fcontext", "-l", "-C"], TimeSpan.FromMinutes(2));
        var fromSemanage = FileContexts.ParseSemanageListing(listing.StandardOutput);
        var fromFile = FileContexts.ParseLocalFile(SelinuxPolicy.Read()!.ReadLocal());
        Assert.Contains(fromFile, e => e.Path == rule && e.FileType == "directory" && e.Type == "postgresql_db_t");
        Assert.Equal(fromSemanage.OrderBy(e => e.Path, StringComparer.Ordinal), fromFile.OrderBy(e => e.Path, StringComparer.Ordinal));
        Assert.Equal(0, (await CliRunner.RunAsync("plan", file)).ExitCode);
    }
}
