using System.Text.RegularExpressions;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Hostile;

/// <summary>
/// Hostile and clumsy input, field by field and section by section: every case must end with exit 1
/// and a positioned error (file:line:col) or a clean error, no internal error, no stack trace, no
/// change on the host (configuration files, units, roles, slots, tables) and no marker file that an
/// injected command would create. validate and apply both run for each manifest case.
/// </summary>
[Collection(SharedClusterA.Name)]
public partial class HostileInputTests(ClusterFixture fixture) : IDisposable, IAsyncLifetime
{
    private readonly ScratchCluster _cluster = fixture.Cluster;

    public Task InitializeAsync() => fixture.BeginAsync(GetType());

    Task IAsyncLifetime.DisposeAsync() => Task.CompletedTask;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Values no field may hold, as YAML double-quoted escapes.</summary>
    public static readonly (string Name, string Escaped)[] Poisons =
    [
        ("newline injection", "x\\nhost all all 0.0.0.0/0 trust\\n#"),
        ("trailing newline", "value\\n"),
        ("carriage return", "a\\rb"),
        ("tab", "a\\tb"),
        ("NUL", "a\\0b"),
        ("escape sequence", "a\\e[31mb"),
        ("line separator", "a\\u2028b"),
        ("DEL", "a\\x7fb"),
    ];

    /// <summary>Every string field of every section, with {V} where the poison goes.</summary>
    public static readonly (string Field, string Body)[] Fields =
    [
        ("dataDirectory", "  dataDirectory: \"/data{V}\""),
        ("restart.service", "  restart: {policy: allowed, service: \"pg{V}\"}"),
        ("restart.command", "  restart: {policy: allowed, command: [\"/bin/true\", \"{V}\"]}"),
        ("restart.logFile", "  restart: {policy: allowed, logFile: \"/tmp/log{V}\"}"),
        ("archiving.destination", "  archiving: {method: copy, destination: \"/arch{V}\"}"),
        ("archiving.stanza", "  archiving: {method: pgbackrest, stanza: \"main{V}\"}"),
        ("archiving.command", "  archiving: {method: command, command: \"cp %p /a/%f {V}\"}"),
        ("archiving.restoreCommand", "  archiving: {method: command, command: \"cp %p /a/%f\", restoreCommand: \"cp /a/%f %p{V}\"}"),
        ("archiving.timeout", "  archiving: {timeout: \"5min{V}\"}"),
        ("settings value", "  settings: {log_line_prefix: \"%m {V}\"}"),
        ("settings key", "  settings: {\"work_mem{V}\": 4MB}"),
        ("hba database", "  hba: {rules: [{type: local, database: \"db{V}\", user: all, method: peer}]}"),
        ("hba database list", "  hba: {rules: [{type: local, database: [app, \"db{V}\"], user: all, method: peer}]}"),
        ("hba user", "  hba: {rules: [{type: local, database: all, user: \"u{V}\", method: peer}]}"),
        ("hba address", "  hba: {rules: [{type: host, database: all, user: all, address: \"10.0.0.0/8{V}\", method: md5}]}"),
        ("hba option value", "  hba: {rules: [{type: local, database: all, user: all, method: peer, options: {map: \"m{V}\"}}]}"),
        ("hba option key", "  hba: {rules: [{type: local, database: all, user: all, method: peer, options: {\"map={V}\": y}}]}"),
        ("hba comment", "  hba: {rules: [{type: local, database: all, user: all, method: peer, comment: \"c{V}\"}]}"),
        ("hba file", "  hba: {file: \"/etc/hba{V}\", rules: [{type: local, database: all, user: all, method: peer}]}"),
        ("directories path", "  directories: [{path: \"/srv/pg{V}\"}]"),
        ("directories owner", "  directories: [{path: /srv/pgx, owner: \"postgres{V}\"}]"),
        ("directories group", "  directories: [{path: /srv/pgx, group: \"postgres{V}\"}]"),
        ("directories mode", "  directories: [{path: /srv/pgx, mode: \"0700{V}\"}]"),
        ("fileContexts path", "  selinux: {fileContexts: [{path: \"/srv/pg(/.*)?{V}\", type: postgresql_db_t}]}"),
        ("fileContexts type", "  selinux: {fileContexts: [{path: \"/srv/pg(/.*)?\", type: \"postgresql_db_t{V}\"}]}"),
        ("fileContexts seuser", "  selinux: {fileContexts: [{path: \"/srv/pg(/.*)?\", type: postgresql_db_t, seuser: \"system_u{V}\"}]}"),
        ("fileContexts range", "  selinux: {fileContexts: [{path: \"/srv/pg(/.*)?\", type: postgresql_db_t, range: \"s0{V}\"}]}"),
        ("selinux relabel", "  selinux: {relabel: [\"/srv/pg{V}\"]}"),
        ("role name", "  roles: [{name: \"r{V}\"}]"),
        ("role validUntil", "  roles: [{name: r1, validUntil: \"2030-01-01{V}\"}]"),
        ("role inRoles", "  roles: [{name: r1, inRoles: [\"g{V}\"]}]"),
        ("role password fromEnv", "  roles: [{name: r1, password: {fromEnv: \"PW{V}\"}}]"),
        ("role password fromFile", "  roles: [{name: r1, password: {fromFile: \"/run/pw{V}\"}}]"),
        ("slot name", "  slots: [{name: \"s1{V}\"}]"),
        ("slot plugin", "  slots: [{name: s1, type: logical, plugin: \"pgoutput{V}\", database: postgres}]"),
        ("slot database", "  slots: [{name: s1, type: logical, plugin: pgoutput, database: \"postgres{V}\"}]"),
        ("backup name", "  backups: [{name: \"n84{V}\", schedule: daily, destination: /srv/b}]"),
        ("backup schedule", "  backups: [{name: n1, schedule: \"daily{V}\", destination: /srv/b}]"),
        ("backup destination", "  backups: [{name: n1, schedule: daily, destination: \"/srv/b{V}\"}]"),
        ("backup connection user", "  backups: [{name: n1, schedule: daily, destination: /srv/b, connection: {user: \"u{V}\"}}]"),
        ("backupScheduling pgstatePath", "  backups: [{name: n1, schedule: daily, destination: /srv/b, scheduler: cron}]\n  backupScheduling: {pgstatePath: \"/usr/bin/pgstate{V}\"}"),
        ("backupScheduling manifestPath", "  backups: [{name: n1, schedule: daily, destination: /srv/b, scheduler: cron}]\n  backupScheduling: {manifestPath: \"/etc/pgstate/db.yaml{V}\"}"),
        ("backupScheduling unitDirectory", "  backups: [{name: n1, schedule: daily, destination: /srv/b}]\n  backupScheduling: {unitDirectory: \"/srv/units{V}\"}"),
        ("checks expectedStandbys", "  checks: {expectedStandbys: [\"s{V}\"]}"),
        ("hba user list", "  hba: {rules: [{type: local, database: all, user: [postgres, \"u{V}\"], method: peer}]}"),
        ("backup connection password fromEnv", "  backups: [{name: n1, schedule: daily, destination: /srv/b, connection: {password: {fromEnv: \"PW{V}\"}}}]"),
        ("backupScheduling cronDirectory", "  backups: [{name: n1, schedule: daily, destination: /srv/b, scheduler: cron}]\n  backupScheduling: {cronDirectory: \"/srv/cron{V}\"}"),
        ("pgbackrest stanza", "  pgbackrest: {stanza: \"main{V}\", repositories: [{path: /srv/repo}]}"),
        ("pgbackrest repository path", "  pgbackrest: {stanza: main, repositories: [{path: \"/srv/repo{V}\"}]}"),
        ("pgbackrest option value", "  pgbackrest: {stanza: main, repositories: [{path: /srv/repo}], options: {log-level-file: \"detail{V}\"}}"),
        ("pgbackrest option key", "  pgbackrest: {stanza: main, repositories: [{path: /srv/repo}], options: {\"log-level-file{V}\": detail}}"),
        ("pgbackrest cipher pass fromEnv", "  pgbackrest: {stanza: main, repositories: [{path: /srv/repo, cipher: {pass: {fromEnv: \"CP{V}\"}}}]}"),
        ("pgbackrest spool path", "  pgbackrest: {stanza: main, repositories: [{path: /srv/repo}], archiveAsync: {enabled: true, spoolPath: \"/srv/spool{V}\"}}"),
        ("drill workDirectory", "  backups: [{name: n1, schedule: daily, destination: /srv/b, drill: {schedule: daily, workDirectory: \"/srv/drills{V}\"}}]"),
        ("drill target", "  backups: [{name: n1, schedule: daily, destination: /srv/b, drill: {schedule: daily, target: \"6h ago{V}\"}}]"),
        ("drill probe name", "  backups: [{name: n1, schedule: daily, destination: /srv/b, drill: {schedule: daily, probes: [{name: \"p{V}\", sql: \"select 1\", expect: 1}]}}]"),
        ("drill probe sql", "  backups: [{name: n1, schedule: daily, destination: /srv/b, drill: {schedule: daily, probes: [{name: p, sql: \"select 1 {V}\", expect: 1}]}}]"),
        ("drill probe database", "  backups: [{name: n1, schedule: daily, destination: /srv/b, drill: {schedule: daily, probes: [{name: p, database: \"db{V}\", sql: \"select 1\", expect: 1}]}}]"),
        ("drill settings value", "  backups: [{name: n1, schedule: daily, destination: /srv/b, drill: {schedule: daily, settings: {work_mem: \"64MB{V}\"}}}]"),
    ];

    public static TheoryData<string, string> ControlCharacterCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var (field, body) in Fields.Where(f => f.Body.Contains("{V}", StringComparison.Ordinal)))
        {
            foreach (var (poison, escaped) in Poisons)
            {
                data.Add($"{field}: {poison}", body.Replace("{V}", escaped, StringComparison.Ordinal));
            }
        }
        return data;
    }

    /// <summary>Hostile values that are not control characters: sizes, overflows, paths, names, syntax PostgreSQL would misread.</summary>
    public static TheoryData<string, string> ValueCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var (kind, body) in Values)
        {
            data.Add(kind, body);
        }
        return data;
    }

    public static readonly (string Kind, string Body)[] Values =
    [
        ("connectionLimit overflow", "  roles: [{name: r1, connectionLimit: 99999999999}]"),
        ("port overflow", "  restart: {policy: never}\n  settings: {port: 99999999999999999999999}"),
        ("connectTimeout zero", "  settings: {}\n  restart: {timeout: 0x10}"),
        ("retention count overflow", "  backups: [{name: n1, schedule: daily, destination: /srv/b, retention: {count: 99999999999}}]"),
        ("retention count zero", "  backups: [{name: n1, schedule: daily, destination: /srv/b, retention: {count: 0}}]"),
        ("duration overflow", "  backups: [{name: n1, schedule: daily, destination: /srv/b, retention: {maxAge: 99999999999999999d}}]"),
        ("duration unit", "  checks: {archiveLagWarn: 5 minutes}"),
        ("size overflow", "  slotRetentionWarn: 99999999999999999TB"),
        ("size unit", "  slotRetentionWarn: 10 GB"),
        ("percent above 100", "  checks: {archiveFreeSpaceWarn: 101}"),
        ("archive timeout in words", "  archiving: {timeout: 5 minutes}"),
        ("directory is /", "  directories: [{path: /}]"),
        ("directory is /etc", "  directories: [{path: /etc}]"),
        ("directory with ..", "  directories: [{path: /srv/../etc}]"),
        ("directory relative", "  directories: [{path: srv/pg}]"),
        ("backup destination /", "  backups: [{name: n1, schedule: daily, destination: /}]"),
        ("archive destination /", "  archiving: {method: copy, destination: /}"),
        ("setting value too long", "  settings: {log_line_prefix: \"" + new string('x', 9000) + "\"}"),
        ("scalar too long", "  settings: {application_name: \"" + new string('y', 20_000) + "\"}"),
        ("parameter name with dash", "  settings: {max-wal: 1}"),
        ("parameter name too long", "  settings: {" + new string('a', 70) + ": 1}"),
        ("parameter name with quote", "  settings: {\"wal\\\"level\": 1}"),
        ("parameter value a list", "  settings: {work_mem: [1, 2]}"),
        ("hba keyword case is a name, +group with a space", "  hba: {rules: [{type: local, database: all, user: \"+my group\", method: peer}]}"),
        ("hba @file with a comma", "  hba: {rules: [{type: local, database: \"@a,b\", user: all, method: peer}]}"),
        ("hba name starting with /", "  hba: {rules: [{type: local, database: \"\\\"/x\\\"\", user: all, method: peer}]}"),
        ("hba comment ends the block", "  hba: {mode: managed-block, rules: [{type: local, database: all, user: all, method: peer, comment: \"END pgstate\"}]}"),
        ("hba comment begins a block", "  hba: {rules: [{type: local, database: all, user: all, method: peer, comment: \"BEGIN pgstate — mine\"}]}"),
        ("hba comment ends in a backslash", "  hba: {rules: [{type: local, database: all, user: all, method: peer, comment: \"continued \\\\\"}]}"),
        ("hba unknown option", "  hba: {rules: [{type: local, database: all, user: all, method: peer, options: {mapp: x}}]}"),
        ("hba token too long", "  hba: {rules: [{type: local, database: \"" + new string('d', 300) + "\", user: all, method: peer}]}"),
        ("hba option too long", "  hba: {rules: [{type: local, database: all, user: all, method: peer, options: {map: \"" + new string('m', 300) + "\"}}]}"),
        ("hba address with zone", "  hba: {rules: [{type: host, database: all, user: all, address: \"fe80::1%eth0/64\", method: md5}]}"),
        ("hba address not cidr", "  hba: {rules: [{type: host, database: all, user: all, address: \"10.0.0.1\", method: md5}]}"),
        ("hba address shell", "  hba: {rules: [{type: host, database: all, user: all, address: \"$(touch /tmp/pgstate-pwned-a)\", method: md5}]}"),
        ("hba method unknown", "  hba: {rules: [{type: local, database: all, user: all, method: TRUST}]}"),
        ("hba type case", "  hba: {rules: [{type: Local, database: all, user: all, method: peer}]}"),
        ("hba empty database", "  hba: {rules: [{type: local, database: \"\", user: all, method: peer}]}"),
        ("hba empty list", "  hba: {rules: [{type: local, database: [], user: all, method: peer}]}"),
        ("hba position without block", "  hba: {position: bottom, rules: []}"),
        ("role validUntil words", "  roles: [{name: r1, validUntil: tomorrow}]"),
        ("role validUntil impossible date", "  roles: [{name: r1, validUntil: \"2030-13-45\"}]"),
        ("role validUntil sql", "  roles: [{name: r1, validUntil: \"x\\\\'; CREATE TABLE pwned(); --\"}]"),
        ("role name 64 bytes", "  roles: [{name: \"" + new string('r', 64) + "\"}]"),
        ("role name 63 chars 126 bytes", "  roles: [{name: \"" + string.Concat(Enumerable.Repeat("é", 63)) + "\"}]"),
        ("role two password sources", "  roles: [{name: r1, password: {fromEnv: PW, fromFile: /run/pw}}]"),
        ("role password no source", "  roles: [{name: r1, password: {update: always}}]"),
        ("role password env name", "  roles: [{name: r1, password: {fromEnv: \"PW; rm -rf /\"}}]"),
        ("role twice", "  roles: [{name: r1}, {name: r1}]"),
        ("slot name uppercase", "  slots: [{name: Slot1}]"),
        ("slot name too long", "  slots: [{name: " + new string('s', 64) + "}]"),
        ("slot logical incomplete", "  slots: [{name: s1, type: logical}]"),
        ("slot physical with plugin", "  slots: [{name: s1, plugin: pgoutput}]"),
        ("slot twice", "  slots: [{name: s1}, {name: s1}]"),
        ("backup name with slash", "  backups: [{name: \"../x\", schedule: daily, destination: /srv/b}]"),
        ("backup name uppercase", "  backups: [{name: Nightly, schedule: daily, destination: /srv/b}]"),
        ("backup cron cannot", "  backups: [{name: n1, schedule: \"*-*-1/2 04:00\", destination: /srv/b, scheduler: cron}]"),
        ("backup compression plain", "  backups: [{name: n1, schedule: daily, destination: /srv/b, compression: gzip}]"),
        ("backup twice", "  backups: [{name: n1, schedule: daily, destination: /srv/b}, {name: n1, schedule: daily, destination: /srv/c}]"),
        ("backupScheduling pgstatePath with space", "  backups: [{name: n1, schedule: daily, destination: /srv/b}]\n  backupScheduling: {pgstatePath: \"/usr/bin/pg state\"}"),
        ("backupScheduling manifestPath percent", "  backups: [{name: n1, schedule: daily, destination: /srv/b}]\n  backupScheduling: {manifestPath: \"/etc/%n.yaml\"}"),
        ("backupScheduling pgstatePath dollar", "  backups: [{name: n1, schedule: daily, destination: /srv/b, scheduler: cron}]\n  backupScheduling: {pgstatePath: \"/usr/bin/$(touch /tmp/pgstate-pwned-b)\"}"),
        ("fileContexts bad regex", "  selinux: {fileContexts: [{path: \"/srv/pg(\", type: postgresql_db_t}]}"),
        ("fileContexts type not _t", "  selinux: {fileContexts: [{path: \"/srv/pg\", type: postgresql_db}]}"),
        ("directory twice", "  directories: [{path: /srv/a}, {path: /srv/a/}]"),
        ("mode not octal", "  directories: [{path: /srv/a, mode: \"0800\"}]"),
        ("mode as number", "  directories: [{path: /srv/a, mode: 700}]"),
        ("archiving field of another method", "  archiving: {method: copy, destination: /a, stanza: main}"),
        ("archiving command without %p", "  archiving: {method: command, command: \"cp /x /y\"}"),
        ("settings archive_command twice", "  archiving: {method: copy, destination: /a}\n  settings: {archive_command: \"cp %p /b\"}"),
        ("unknown section", "  archving: {mode: \"on\"}"),
        ("unknown field", "  archiving: {modee: \"on\"}"),
        ("wrong type section", "  archiving: [1, 2]"),
        ("yes is a string not a boolean", "  slotsPrune: yes"),
        ("env reference unset", "  archiving: {method: copy, destination: \"${env:PGSTATE_HOSTILE_UNSET}\"}"),
        ("env reference malformed", "  archiving: {method: copy, destination: \"/a/${env:1BAD}\"}"),
        ("env reference unterminated", "  archiving: {method: copy, destination: \"/a/${env:X\"}"),
        ("env value with a newline", "  archiving: {method: copy, destination: \"/a/${env:PGSTATE_HOSTILE_NEWLINE}\"}"),
        ("env in flow mapping", "  archiving: {method: copy, destination: ${env:PGSTATE_HOSTILE_PATH}}"),
        ("duplicate key", "  archiving:\n    mode: \"on\"\n    mode: \"off\""),
        ("tab indentation", "  archiving:\n\tmode: \"on\""),
        ("unterminated flow", "  archiving: {mode: \"on\""),
        ("unknown alias", "  archiving: *nowhere"),
        ("complex key", "  ? [a, b]\n  : 1"),
        ("anchor and alias mixing types", "  settings: &s {work_mem: 4MB}\n  archiving: *s"),
    ];

    private static readonly Dictionary<string, string> Environment = new()
    {
        ["PGSTATE_HOSTILE_NEWLINE"] = "x\nExecStartPre=/bin/touch /tmp/pgstate-pwned-c",
        ["PGSTATE_HOSTILE_PATH"] = "/srv/a",
        ["PW"] = "secret-value",
    };

    [GeneratedRegex(@"^/[^\n]*\.yaml:[0-9]+:[0-9]+: ", RegexOptions.Multiline)]
    private static partial Regex Positioned();

    private async Task AssertRefusedAsync(string kind, string body)
    {
        var before = await HostState.CaptureAsync(_cluster);
        var file = _dir.Write($"hostile-{Guid.NewGuid():N}.yaml", _cluster.Manifest("db", body));
        foreach (var command in new[] { new[] { "validate", "--require-secrets", file }, ["apply", "--auto-approve", file] })
        {
            var result = await CliRunner.RunAsync(command, Environment);
            Assert.True(result.ExitCode == 1, $"{kind}: {command[0]} must fail\n{result}");
            Assert.True(Positioned().IsMatch(result.Stderr), $"{kind}: {command[0]} gives no file:line:col\n{result}");
            AssertClean(kind, result);
            if (command[0] == "apply")
            {
                Assert.Equal("", result.Stdout);
            }
        }
        Assert.Equal(before, await HostState.CaptureAsync(_cluster));
    }

    internal static void AssertClean(string kind, CliResult result)
    {
        var all = result.Stdout + result.Stderr;
        Assert.False(all.Contains("internal error", StringComparison.Ordinal), $"{kind}: internal error\n{result}");
        Assert.False(all.Contains("Unhandled exception", StringComparison.Ordinal), $"{kind}: unhandled exception\n{result}");
        Assert.False(Regex.IsMatch(all, @"^\s+at [A-Za-z0-9_.]+\(", RegexOptions.Multiline), $"{kind}: stack trace\n{result}");
        Assert.Empty(Directory.EnumerateFiles("/tmp", "pgstate-pwned-*"));
    }

    [Theory]
    [MemberData(nameof(ControlCharacterCases))]
    public Task Control_characters_are_refused_in_every_field(string kind, string body) => AssertRefusedAsync(kind, body);

    [Theory]
    [MemberData(nameof(ValueCases))]
    public Task Hostile_values_are_refused_with_a_position(string kind, string body) => AssertRefusedAsync(kind, body);

    [Fact]
    public void The_set_covers_at_least_150_cases_across_every_section()
    {
        var cases = Fields.Count(f => f.Body.Contains("{V}", StringComparison.Ordinal)) * Poisons.Length + Values.Length + FileCases.Length + PlanFileTamperingTests.Cases.Length;
        Assert.True(cases >= 150, $"{cases} cases");
        var bodies = Fields.Select(f => f.Body).Concat(Values.Select(v => v.Body)).ToList();
        foreach (var section in new[] { "restart:", "archiving:", "settings:", "hba:", "directories:", "selinux:", "roles:", "slots:", "backups:", "backupScheduling:", "checks:", "dataDirectory:", "slotRetentionWarn:", "slotsPrune:" })
        {
            Assert.Contains(bodies, b => b.Contains(section, StringComparison.Ordinal));
        }
    }

    /// <summary>Files that are not manifests a person wrote: they are refused before anything is read into memory.</summary>
    public static readonly string[] FileCases = ["fifo", "dev-zero-link", "directory-without-yaml", "invalid-utf8", "nul-byte", "too-large", "alias-bomb", "deep-flow", "deep-block", "many-documents-one-bad"];

    [Theory]
    [MemberData(nameof(FileCaseData))]
    public async Task Hostile_files_are_refused_by_the_real_binary(string kind)
    {
        var before = await HostState.CaptureAsync(_cluster);
        var path = Path.Combine(_dir.Path, "f-" + kind);
        switch (kind)
        {
            case "fifo":
                path += ".yaml";
                await Engine.Host.ProcessRunner.Default.RunAsync("mkfifo", [path]);
                break;
            case "dev-zero-link":
                path += ".yaml";
                File.CreateSymbolicLink(path, "/dev/zero");
                break;
            case "directory-without-yaml":
                Directory.CreateDirectory(path);
                File.WriteAllText(Path.Combine(path, "notes.txt"), "x");
                break;
            case "invalid-utf8":
                path += ".yaml";
                File.WriteAllBytes(path, [.. System.Text.Encoding.UTF8.GetBytes(_cluster.Manifest("db", "  settings: {application_name: \"")), 0xC3, 0x28, .. "\"}"u8.ToArray()]);
                break;
            case "nul-byte":
                path += ".yaml";
                File.WriteAllText(path, _cluster.Manifest("db", "  settings: {}\n\0"));
                break;
            case "too-large":
                path += ".yaml";
                await using (var f = File.Create(path))
                {
                    f.SetLength(17L * 1024 * 1024);
                }
                break;
            case "alias-bomb":
                path += ".yaml";
                var lines = new List<string> { "a: &a [x, x, x, x, x, x, x, x, x, x]" };
                for (var i = 1; i < 12; i++)
                {
                    lines.Add($"{(char)('a' + i)}: &{(char)('a' + i)} [*{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}, *{(char)('a' + i - 1)}]");
                }
                File.WriteAllText(path, string.Join('\n', lines) + "\n");
                break;
            case "deep-flow":
                path += ".yaml";
                File.WriteAllText(path, new string('[', 50_000) + new string(']', 50_000) + "\n");
                break;
            case "deep-block":
                path += ".yaml";
                File.WriteAllText(path, string.Concat(Enumerable.Range(0, 200).Select(i => new string(' ', i * 2) + "k:\n")) + new string(' ', 400) + "v\n");
                break;
            case "many-documents-one-bad":
                path += ".yaml";
                File.WriteAllText(path, _cluster.Manifest("a", "  settings: {}") + "\n---\n" + _cluster.Manifest("b", "  settings: {work_mem: [1]}"));
                break;
        }
        var watch = System.Diagnostics.Stopwatch.StartNew();
        foreach (var command in new[] { "validate", "apply" })
        {
            var run = await PgStateBinary.RunAsync(command == "apply" ? ["apply", "--auto-approve", path] : ["validate", path], timeout: TimeSpan.FromSeconds(30));
            var result = new CliResult(run.ExitCode, run.StandardOutput, run.StandardError);
            Assert.True(result.ExitCode == 1, $"{kind}: {command}\n{result}");
            Assert.Matches(@":[0-9]+:[0-9]+: ", result.Stderr);
            AssertClean(kind, result);
        }
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"{kind} took {watch.Elapsed}");
        Assert.Equal(before, await HostState.CaptureAsync(_cluster));
    }

    /// <summary>A file name is not a value pgstate writes anywhere: the jobs run with the declared manifestPath.</summary>
    [Fact]
    public async Task A_manifest_file_name_with_a_cron_line_in_it_never_reaches_a_cron_file()
    {
        var cron = Path.Combine(_dir.Path, "cron");
        var path = Path.Combine(_dir.Path, "c102\n* * * * * root touch pwned9\n.yaml");
        File.WriteAllText(path, _cluster.Manifest("db",
            $"  backups: [{{name: n1, schedule: \"*-*-* 02:30:00\", destination: {_dir.Path}/b, scheduler: cron}}]\n  backupScheduling: {{cronDirectory: {cron}}}"));
        var apply = await CliRunner.RunAsync("apply", "--auto-approve", path);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        var written = File.ReadAllText(Assert.Single(Directory.GetFiles(cron)));
        Assert.DoesNotContain("pwned9", written);
        Assert.Equal(3, written.TrimEnd('\n').Split('\n').Length);
        Assert.Contains($"--manifest {CliRunner.HostEnvironment["PGSTATE_CONFIG_DIR"]}/db.yaml", written);
    }

    public static TheoryData<string> FileCaseData()
    {
        var data = new TheoryData<string>();
        foreach (var c in FileCases)
        {
            data.Add(c);
        }
        return data;
    }
}
