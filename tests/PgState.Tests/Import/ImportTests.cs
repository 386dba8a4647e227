using System.Globalization;
using System.Text.RegularExpressions;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Modules.Selinux;
using PgState.Tests.Infrastructure;
using PgState.Tests.Snapshots;
using Snapshooter;
using Snapshooter.Xunit;

namespace PgState.Tests.Import;

/// <summary>
/// pgstate import's acceptance test, on a real server: apply a manifest (each example, a hand-made
/// messy host), import what is there, plan the imported manifest against the same host: exit 0,
/// no changes. Host directories (units, cron, /etc/pgstate, credentials) are this test's own.
/// </summary>
[Collection(SharedClusterB.Name)]
public sealed partial class ImportTests(ClusterFixture fixture) : IAsyncLifetime
{
    private readonly ScratchCluster _cluster = fixture.Cluster;
    private readonly TempDir _dir = new();
    private readonly List<(string Path, string FileType)> _contexts = [];

    public async Task InitializeAsync()
    {
        // Every test starts from initdb's state (and the next class sharing the cluster resets after this one).
        await fixture.BeginAsync(GetType());
        await _cluster.ResetAllAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var (path, fileType) in _contexts)
        {
            await ProcessRunner.Default.RunAsync("semanage", ["fcontext", "-d", "-f", FileContexts.Letter(fileType), path], TimeSpan.FromMinutes(2), check: false);
        }
        _dir.Dispose();
    }

    private string Port => _cluster.Port.ToString(CultureInfo.InvariantCulture);

    private Dictionary<string, string> Environment(string password = "Example-Password-1") => new()
    {
        ["PGSTATE_UNIT_DIR"] = Path.Combine(_dir.Path, "host", "systemd"),
        ["PGSTATE_CRON_DIR"] = Path.Combine(_dir.Path, "host", "cron.d"),
        ["PGSTATE_CONFIG_DIR"] = Path.Combine(_dir.Path, "host", "etc"),
        ["PGSTATE_CREDENTIALS_DIR"] = Path.Combine(_dir.Path, "host", "credentials"),
        ["PGSTATE_SANDBOX"] = _cluster.Root,
        ["PGSTATE_SANDBOX_PORT"] = Port,
        ["PG_BACKUP_PASSWORD"] = password,
        ["PGSTATE_PASSWORD_BACKUP_USER"] = password,
        ["PGSTATE_PASSWORD_REPLICATOR"] = "Replicator-Password-2",
        ["PGSTATE_PASSWORD_O_BRIEN___1____X_"] = "Hostile-Password-3",
    };

    private Task<CliResult> ImportAsync(Dictionary<string, string> env, string output, params string[] extra) =>
        CliRunner.RunAsync(["import", "--pg-host", _cluster.SocketDirectory, "--pg-port", Port, "--out", output, .. extra], env);

    /// <summary>Imports, validates and plans the result: the acceptance test of import.</summary>
    private async Task<string> ImportAndPlanCleanAsync(Dictionary<string, string> env, params string[] extra)
    {
        var output = Path.Combine(_dir.Path, "imported.yaml");
        var import = await ImportAsync(env, output, extra);
        Assert.True(import.ExitCode == 0, import.ToString());
        var text = File.ReadAllText(output);
        Assert.StartsWith("# yaml-language-server: $schema=", text);
        var validate = await CliRunner.RunAsync(["validate", "--require-secrets", output], env);
        Assert.True(validate.ExitCode == 0, validate + "\n" + text);
        var plan = await CliRunner.RunAsync(["plan", output], env);
        Assert.True(plan.ExitCode == 0, plan + "\n--- imported\n" + text);
        Assert.Contains("Plan: 0 to add, 0 to change, 0 to destroy.", plan.Stdout);
        Assert.DoesNotContain("Example-Password-1", text + import.Stderr);
        return text;
    }

    /// <summary>
    /// Every example but pgbackrest.yaml: import does not write spec.pgbackrest yet (pgBackRest support was
    /// built beside import; its configuration file is listed as not imported), and that example's
    /// repository and configuration paths are the host's own (/etc/pgbackrest, /var/lib/pgbackrest).
    /// PgBackRestTests apply it in a temporary directory.
    /// </summary>
    public static TheoryData<string> Examples() =>
        [.. Directory.GetFiles(Path.Combine(ExamplePlanSnapshotTests.RepositoryRoot, "examples"), "*.yaml").Select(f => Path.GetFileName(f))
            .Where(f => f != "pgbackrest.yaml").Order(StringComparer.Ordinal)];

    /// <summary>An example pointed at the scratch cluster and temporary paths, restart left pending (policy never).</summary>
    private string Adapt(string example)
    {
        var text = File.ReadAllText(Path.Combine(ExamplePlanSnapshotTests.RepositoryRoot, "examples", example));
        text = Regex.Replace(text, @"^  connection: \{.*\}$", $"  connection: {{host: {_cluster.SocketDirectory}, port: {Port}, user: postgres}}", RegexOptions.Multiline);
        text = Regex.Replace(text, @"^  dataDirectory: .*$", $"  dataDirectory: {_cluster.DataDirectory}", RegexOptions.Multiline);
        text = Regex.Replace(text, @"^  restart:( \{.*\})?[^\n]*\n(    [^\n]*\n)*", "  restart: {policy: never}\n", RegexOptions.Multiline);
        foreach (var path in new[] { "/pg_archive", "/var/lib/pgsql/backups", "/var/lib/pgsql/drills", "/mnt/server/archivedir" })
        {
            text = text.Replace(path, Path.Combine(_dir.Path, path.Replace('/', '_')), StringComparison.Ordinal);
        }
        // The scratch cluster has no server certificate: a hostssl line is refused by the server's own check (ssl = off).
        text = text.Replace("type: hostssl,", "type: host,", StringComparison.Ordinal);
        // pgstate's own connection comes over the socket as postgres from another OS user: trust it first.
        return text.Replace("    rules:\n", "    rules:\n      - {type: local, database: all, user: all, method: trust}\n", StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public async Task Each_example_applied_then_imported_plans_with_no_changes(string example)
    {
        var env = Environment();
        var manifest = Adapt(example);
        var hasSelinux = manifest.Contains("fileContexts", StringComparison.Ordinal);
        foreach (Match m in Regex.Matches(manifest, @"path: ""([^""]+)"", type: "))
        {
            _contexts.Add((m.Groups[1].Value, "all files"));
        }
        var file = _dir.Write(example, manifest);
        var apply = await CliRunner.RunAsync(["apply", "--auto-approve", file], env);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        // restart.policy is never: the DBA restarts for what needs it (archive_mode, wal_level), then adopts the host.
        if (await _cluster.ScalarAsync<bool>("select exists(select 1 from pg_settings where pending_restart)"))
        {
            await _cluster.RestartAsync();
        }
        // A deployed host keeps its manifest where the backup jobs read it (/etc/pgstate/HOST.yaml).
        _dir.Write(Path.Combine("host", "etc", Regex.Match(manifest, @"metadata: \{name: ([^}]+)\}").Groups[1].Value + ".yaml"), manifest);

        // The selinux section reads the whole policy store, which other tests change at the same time: only where the example has one.
        var text = await ImportAndPlanCleanAsync(env, hasSelinux ? [] : ["--sections", "archiving,settings,directories,hba,roles,slots,backups"]);
        switch (example)
        {
            case "archiving-copy.yaml" or "rhel-archive-mount.yaml" or "sandbox.yaml":
                Assert.Contains("method: copy", text);
                break;
            case "archiving-pgbackrest.yaml":
                Assert.Contains("stanza: main", text);
                Assert.Contains("max_wal_size: 4GB", text);
                Assert.Contains("checkpoint_timeout: 15min", text);
                break;
            case "archiving-command.yaml":
                Assert.Contains("method: command", text);
                Assert.Contains("timeout: 10min", text);
                break;
            case "hba.yaml":
                Assert.Contains("comment: everything else is refused", text);
                Assert.DoesNotContain("compare: rules", text);
                Assert.Contains("metadata: {name: db1}", text);
                break;
            case "replication.yaml":
                Assert.Contains("password: {fromEnv: PGSTATE_PASSWORD_BACKUP_USER, update: on-create}", text);
                Assert.Contains("{name: standby1, type: physical}", text);
                Assert.Contains("max_slot_wal_keep_size: 50GB", text);
                break;
            case "backups.yaml":
                Assert.Contains("name: nightly", text);
                Assert.Contains("retention: {count: 7, maxAge: 14d}", text);
                Assert.Contains("/var/lib/pgsql/backups".Replace('/', '_'), text);
                break;
            case "restore-drill.yaml":
                Assert.Contains("maxRpo: 10min", text);
                Assert.Contains("name: orders_exist", text);
                break;
        }
        if (hasSelinux)
        {
            Assert.Contains("fileContexts:", text);
        }
    }

    /// <summary>A host nobody wrote with pgstate: comments, tabs, mask-form CIDR, quoted names, slots, settings in many units.</summary>
    private async Task MakeMessyHostAsync()
    {
        File.WriteAllText(_cluster.HbaPath(),
            "# pg_hba.conf, edited by hand over the years\n" +
            "\n" +
            "# TYPE  DATABASE        USER            ADDRESS                 METHOD\n" +
            "\n" +
            "# the tests connect over the socket\n" +
            "local   all             all                                     trust\n" +
            "local\tall\t\"ident user\"\tpeer   map=omicron\n" +
            "host\t\"all\"\t\"Admins\",+ops\t127.0.0.1\t255.255.255.255\t  scram-sha-256   # a database literally named all\n" +
            "   host  \"MixedCase\",app   \"all\"    10.1.0.0   255.255.0.0   md5\n" +
            "#\n" +
            "# replication from the standby subnet\n" +
            "host replication replicator 192.168.0.0/24 scram-sha-256\n" +
            "host    all     all     ::1/128     trust\n" +
            "host  sameuser  all  samenet  reject\n" +
            "host \"Replication\" ALL db.example.com md5\n" +
            "host all \"o'brien: #1 - [x]\" 10.9.0.0 255.255.0.0 md5  # a name that looks like YAML\n");
        await _cluster.ReloadBySignalAsync();
        // Hostile role names: what YAML would retype or cut short (a quote, '#', ': ', a boolean word, a flow
        // sequence, leading dash), and one with a newline that no manifest field takes. Slot names cannot be
        // hostile: PostgreSQL takes only lower-case letters, digits and _ for them.
        foreach (var role in HostileRoles.Append(NewlineRole))
        {
            await _cluster.ExecAsync($"create role {Sql.Identifier(role)} login");
        }
        await _cluster.ExecAsync($"alter role {Sql.Identifier(HostileRoles[0])} password 'Hostile-Password-3'");
        // One statement at a time: ALTER SYSTEM cannot run inside the implicit transaction of a multi-statement query.
        foreach (var statement in (
            "create role \"Admins\"; create role ops; create role app login connection limit 20 valid until '2031-06-30 12:00:00+00';" +
            "create role replicator login replication password 'Replicator-Password-2'; grant ops to app;" +
            "select pg_create_physical_replication_slot('reserved_slot', true); select pg_create_physical_replication_slot('lazy_slot', false);" +
            "alter system set work_mem = '65536'; alter system set maintenance_work_mem = '1GB'; alter system set checkpoint_timeout = '900';" +
            "alter system set log_min_duration_statement = '1500ms'; alter system set statement_timeout = '90s'; alter system set wal_keep_size = '1024';" +
            "alter system set search_path = '$user', public; alter system set log_line_prefix = E'%m [%p] \"q\" it''s \\\\ ${x} '; " +
            "alter system set random_page_cost = 1.1; alter system set log_checkpoints = 'yes'; alter system set archive_timeout = 3600;" +
            "select pg_reload_conf()").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            await _cluster.ExecAsync(statement);
        }
        await Task.Delay(200);
    }

    private static readonly string[] HostileRoles = ["o'brien: #1 - [x]", "yes", "- dash", "{a: b}", "say \"hi\"", "null", "1e3", "trail "];

    private const string NewlineRole = "line\nbreak";

    [Fact]
    public async Task A_hand_made_messy_host_imports_and_plans_clean()
    {
        await MakeMessyHostAsync();
        var env = Environment();
        var text = await ImportAndPlanCleanAsync(env, "--name", "messy", "--sections", "archiving,settings,hba,roles,slots");
        Assert.Contains("compare: rules", text);
        Assert.Contains("database: '\"all\"'", text);
        Assert.Contains("address: 10.1.0.0/16", text);
        Assert.Contains("comment: a database literally named all", text);
        Assert.Contains("comment: replication from the standby subnet", text);
        Assert.Contains("user: [Admins, +ops]", text);
        Assert.Contains("options: {map: omicron}", text);
        Assert.Contains("work_mem: 64MB", text);
        Assert.Contains("checkpoint_timeout: 15min", text);
        Assert.Contains("wal_keep_size: 1GB", text);
        Assert.Contains("search_path: '\"$user\", public'", text);
        Assert.Contains("statement_timeout: 90s", text);
        Assert.Contains("log_checkpoints: \"on\"", text);
        Assert.Contains("timeout: 1h", text);
        Assert.Contains("{name: lazy_slot, type: physical, reserveWal: false}", text);
        Assert.Contains("validUntil: \"2031-06-30 12:00:00+00\"", text);
        Assert.DoesNotContain("Replicator-Password-2", text);
        Assert.DoesNotContain("Hostile-Password-3", text);
        Assert.Contains("password: {fromEnv: PGSTATE_PASSWORD_O_BRIEN___1____X_, update: on-create}", text);
        // Hostile names read back, by pgstate's own YAML reader, as exactly the names the server holds.
        var diagnostics = new DiagnosticBag();
        var root = Assert.IsType<YamlMapping>(new YamlTreeReader("imported.yaml", _ => null, diagnostics).Read(text).Single().Root);
        Assert.False(diagnostics.HasErrors);
        var roles = root.Mapping("spec")!.Sequence("roles")!.Items.Cast<YamlMapping>().Select(r => Assert.IsType<YamlScalar>(r["name"])).ToList();
        Assert.All(roles, r => Assert.Equal(ScalarKind.String, r.Kind));
        Assert.Equal(HostileRoles.Concat(["app", "replicator"]).Order(StringComparer.Ordinal), roles.Select(r => r.Text).Order(StringComparer.Ordinal));
        var hbaUsers = root.Mapping("spec")!.Mapping("hba")!.Sequence("rules")!.Items.Cast<YamlMapping>().Select(r => r["user"]).OfType<YamlScalar>().Select(s => s.Text);
        Assert.Contains(HostileRoles[0], hbaUsers);
        Assert.Contains("comment: a name that looks like YAML", text);
        Assert.Contains("roles: the role \"line\\nbreak\" has a control character", text);
        Assert.Contains("# - settings: fsync = off is set on the server's command line", text);
        // The same text, snapshotted with the cluster's paths and port scrubbed.
        var scrubbed = text.Replace(_cluster.Root, "<tmp>").Replace(Port, "<port>");
        scrubbed = Regex.Replace(scrubbed, @"PostgreSQL [0-9.]+( \([^)]*\))?", "PostgreSQL <version>");
        Snapshot.Match(scrubbed.Split('\n'), SnapshotNameExtension.Create("messy"));
    }

    [Fact]
    public async Task Import_check_plans_the_written_manifest_and_notes_go_to_stderr_and_the_file()
    {
        await MakeMessyHostAsync();
        var output = Path.Combine(_dir.Path, "checked.yaml");
        var result = await ImportAsync(Environment(), output, "--check", "--name", "messy", "--all-settings", "--sections", "settings,hba,slots");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("checked: planned against the same host, the imported manifest shows no changes", result.Stderr);
        Assert.Contains("not represented: settings: listen_addresses = 127.0.0.1 is set on the server's command line", result.Stderr);
        var text = File.ReadAllText(output);
        Assert.Contains("postgresql.conf:", text); // --all-settings names the file of each non-auto parameter
        Assert.DoesNotContain("roles:", text);
        Assert.Contains("listen_addresses = 127.0.0.1 is set on the server's command line", text);
    }

    [Fact]
    public async Task Hba_block_marks_the_chosen_lines_and_leaves_the_others_byte_for_byte()
    {
        await MakeMessyHostAsync();
        var before = File.ReadAllLines(_cluster.HbaPath());
        var text = await ImportAndPlanCleanAsync(Environment(), "--name", "messy", "--sections", "hba", "--hba-block", "11:12");
        var after = File.ReadAllLines(_cluster.HbaPath());
        Assert.Equal(before.Length + 2, after.Length);
        Assert.Equal(before[..10], after[..10]);
        Assert.StartsWith("# BEGIN pgstate", after[10]);
        Assert.StartsWith("# END pgstate", after[13]);
        Assert.Equal(before[10..], after[11..13].Concat(after[14..]));
        Assert.Contains("mode: managed-block", text);
        Assert.Contains("address: 192.168.0.0/24", text);
        Assert.DoesNotContain("10.1.0.0", text);
        var bad = await ImportAsync(Environment(), Path.Combine(_dir.Path, "x.yaml"), "--hba-block", "20:2");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("--hba-block 20:2", bad.Stderr);
    }

    [Fact]
    public async Task Hba_lines_no_manifest_field_can_say_are_listed_at_the_end_and_on_stderr_never_dropped_silently()
    {
        // An include the manifest cannot express (on 16+ an include directive in authoritative mode; before 16 a
        // line PostgreSQL itself does not read): the file is left unreloaded, import reads it from disk.
        File.WriteAllText(_cluster.HbaPath(), "local all all trust\ninclude_dir hba.d\nhost all all 127.0.0.1/32 trust\n");
        var output = Path.Combine(_dir.Path, "includes.yaml");
        var result = await ImportAsync(Environment(), output, "--name", "inc", "--sections", "hba");
        Assert.True(result.ExitCode == 0, result.ToString());
        var text = File.ReadAllText(output);
        var tail = text[text.IndexOf("# Not represented in this manifest", StringComparison.Ordinal)..];
        var stderr = result.Stderr.Split('\n').Single(l => l.StartsWith("pgstate: not represented: hba: line 2", StringComparison.Ordinal));
        Assert.Contains("include_dir", stderr);
        Assert.Contains("# - " + stderr["pgstate: not represented: ".Length..], tail);
        Assert.Contains("address: 127.0.0.1/32", text);
        Assert.DoesNotContain("hba.d", text[..text.IndexOf("# Not represented", StringComparison.Ordinal)]);
    }

    [Fact]
    public async Task Unknown_sections_and_names_are_errors_before_anything_is_read()
    {
        var result = await ImportAsync(Environment(), Path.Combine(_dir.Path, "x.yaml"), "--sections", "hba,pgbouncer");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("'pgbouncer' is not a section import writes", result.Stderr);
        Assert.False(File.Exists(Path.Combine(_dir.Path, "x.yaml")));
    }
}
