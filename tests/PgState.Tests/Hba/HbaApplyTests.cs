using PgState.Tests.Infrastructure;

namespace PgState.Tests.Hba;

/// <summary>pg_hba.conf on a real server of every major: both modes, moves, server-side rejection with rollback,
/// rules that really admit or block a replication connection, the lock-out guard, hba test.</summary>
public abstract class HbaApplyTests(ClusterFixture fixture) : IAsyncLifetime
{
    [Collection(Majors.Pg13)]
    public sealed class Pg13(ClusterFixture<Major13> f) : HbaApplyTests(f);

    [Collection(Majors.Pg14)]
    public sealed class Pg14(ClusterFixture<Major14> f) : HbaApplyTests(f);

    [Collection(Majors.Pg15)]
    public sealed class Pg15(ClusterFixture<Major15> f) : HbaApplyTests(f);

    [Collection(Majors.Pg16)]
    public sealed class Pg16(ClusterFixture<Major16> f) : HbaApplyTests(f);

    [Collection(Majors.Pg17)]
    public sealed class Pg17(ClusterFixture<Major17> f) : HbaApplyTests(f);

    [Collection(Majors.Pg18)]
    public sealed class Pg18(ClusterFixture<Major18> f) : HbaApplyTests(f);

    private readonly ScratchCluster _cluster = fixture.Cluster;
    private readonly TempDir _dir = new();
    private string _original = "";

    public async Task InitializeAsync()
    {
        await fixture.BeginAsync(GetType());
        _original = File.Exists(_cluster.HbaPath() + ".initdb") ? File.ReadAllText(_cluster.HbaPath() + ".initdb") : File.ReadAllText(_cluster.HbaPath());
        File.WriteAllText(_cluster.HbaPath() + ".initdb", _original);
        File.WriteAllText(_cluster.HbaPath(), _original);
        await _cluster.ReloadBySignalAsync();
    }

    public Task DisposeAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }

    private string Manifest(string name, string mode, params string[] rules) =>
        _dir.Write(name, _cluster.Manifest("db", $"  hba:\n    mode: {mode}\n    rules:\n" + string.Concat(rules.Select(r => $"      - {r}\n"))));

    private const string LocalTrust = "{type: local, database: all, user: postgres, method: trust}";
    private const string Replication = "{type: host, database: replication, user: backup_user, address: 127.0.0.1/32, method: scram-sha-256}";
    private const string HostTrust = "{type: host, database: all, user: all, address: 127.0.0.1/32, method: trust}";

    [Fact]
    public async Task Authoritative_plan_apply_plan_is_empty()
    {
        var file = Manifest("auth.yaml", "authoritative", LocalTrust, Replication, HostTrust);
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains("+ hba.rule[1] = \"host replication backup_user 127.0.0.1/32 scram-sha-256 (position 2)\"", plan.Stdout);
        Assert.Contains("- hba.line[", plan.Stdout);

        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.StartsWith("# pg_hba.conf for host db, written by pgstate", File.ReadAllText(_cluster.HbaPath()));
        Assert.Equal(3L, await _cluster.ScalarAsync<long>("select count(*) from pg_hba_file_rules where error is null"));

        var again = await CliRunner.RunAsync("plan", file);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("No changes.", again.Stdout);
    }

    [Fact]
    public async Task Managed_block_leaves_every_other_byte_as_it_was()
    {
        var file = Manifest("block.yaml", "managed-block", Replication);
        var before = File.ReadAllBytes(_cluster.HbaPath());
        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.True(apply.ExitCode == 0, apply.ToString());

        var after = File.ReadAllText(_cluster.HbaPath());
        var lines = after.Split('\n').ToList();
        var begin = lines.FindIndex(l => l.StartsWith("# BEGIN pgstate", StringComparison.Ordinal));
        var end = lines.FindIndex(l => l.StartsWith("# END pgstate", StringComparison.Ordinal));
        Assert.Equal(0, begin);  // position: top is the default
        Assert.Contains("host     replication      backup_user      127.0.0.1/32             scram-sha-256", lines[begin + 1]);
        lines.RemoveRange(begin, end - begin + 1);
        Assert.Equal(before, System.Text.Encoding.UTF8.GetBytes(string.Join('\n', lines)));

        Assert.Equal(0, (await CliRunner.RunAsync("plan", file)).ExitCode);

        // Editing the block's rules changes only the block.
        var file2 = Manifest("block2.yaml", "managed-block", Replication, "{type: host, database: all, user: app, address: 10.0.0.0/8, method: scram-sha-256}");
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", file2)).ExitCode);
        var lines2 = File.ReadAllText(_cluster.HbaPath()).Split('\n').ToList();
        var end2 = lines2.FindIndex(l => l.StartsWith("# END pgstate", StringComparison.Ordinal));
        lines2.RemoveRange(0, end2 + 1);
        Assert.Equal(before, System.Text.Encoding.UTF8.GetBytes(string.Join('\n', lines2)));
        Assert.Equal(0, (await CliRunner.RunAsync("plan", file2)).ExitCode);
    }

    /// <summary>Lines pgstate does not own stay byte for byte (a latin-1 byte, a BOM), and a symlinked pg_hba.conf is written through.</summary>
    [Fact]
    public async Task Foreign_bytes_survive_and_a_symlinked_file_is_written_through()
    {
        var target = Path.Combine(_dir.Path, "real_hba.conf");
        // A BOM at the very start would be read by the server as part of the first token, so it sits in a comment.
        var original = "# "u8.ToArray().Concat(new byte[] { 0xEF, 0xBB, 0xBF }).Concat(System.Text.Encoding.Latin1.GetBytes("r\u00e9seau g\u00e9r\u00e9 \u00e0 la main\n"))
            .Concat(File.ReadAllBytes(_cluster.HbaPath())).ToArray();
        File.WriteAllBytes(target, original);
        await _cluster.ChownToServerAsync(target);
        File.Move(_cluster.HbaPath(), _cluster.HbaPath() + ".moved");
        File.CreateSymbolicLink(_cluster.HbaPath(), target);
        try
        {
            var file = _dir.Write("bytes.yaml", _cluster.Manifest("db", $"  hba:\n    mode: managed-block\n    position: bottom\n    rules:\n      - {Replication}\n"));
            var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
            Assert.True(apply.ExitCode == 0, apply.ToString());
            Assert.NotNull(new FileInfo(_cluster.HbaPath()).LinkTarget);            // still a link …
            var after = File.ReadAllBytes(target);                                      // … to a file that changed
            Assert.Equal(original, after[..original.Length]);                           // every byte before the block kept
            Assert.Contains("# BEGIN pgstate", System.Text.Encoding.Latin1.GetString(after[original.Length..]));
            Assert.Equal(0, (await CliRunner.RunAsync("plan", file)).ExitCode);
        }
        finally
        {
            File.Delete(_cluster.HbaPath());
            File.Move(_cluster.HbaPath() + ".moved", _cluster.HbaPath());
            await _cluster.ReloadBySignalAsync();
        }
    }

    [Fact]
    public async Task Reordering_two_rules_is_a_planned_move_and_is_applied()
    {
        var reject = "{type: host, database: all, user: all, address: 10.0.0.0/8, method: reject}";
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", Manifest("order1.yaml", "authoritative", LocalTrust, HostTrust, reject))).ExitCode);
        var reordered = Manifest("order2.yaml", "authoritative", LocalTrust, reject, HostTrust);
        var plan = await CliRunner.RunAsync("plan", reordered);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains("~ hba.rule[", plan.Stdout);
        Assert.Contains("moved: the first matching rule wins", plan.Stdout);
        Assert.Contains("Plan: 0 to add, 1 to change, 0 to destroy.", plan.Stdout);
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", reordered)).ExitCode);
        var text = File.ReadAllText(_cluster.HbaPath());
        Assert.True(text.IndexOf("10.0.0.0/8", StringComparison.Ordinal) < text.IndexOf("127.0.0.1/32", StringComparison.Ordinal));
        Assert.Equal(0, (await CliRunner.RunAsync("plan", reordered)).ExitCode);
    }

    [Fact]
    public async Task A_rule_the_server_rejects_leaves_the_old_file_and_no_reload()
    {
        var bad = "{type: host, database: all, user: all, address: 10.0.0.0/8, method: scram-sha-256, options: {ldapserver: ldap.example.com}}";
        var file = Manifest("rejected.yaml", "authoritative", LocalTrust, bad);
        var before = File.ReadAllBytes(_cluster.HbaPath());
        var loadTime = await _cluster.ScalarAsync<DateTime>("select pg_conf_load_time()");

        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.Equal(1, apply.ExitCode);
        Assert.True(apply.Stdout.Contains("the server rejects the new pg_hba.conf: line 7: authentication option \"ldapserver\" is only valid for authentication methods ldap", StringComparison.Ordinal), apply.ToString());
        Assert.True(apply.Stdout.Contains("ldapserver=ldap.example.com", StringComparison.Ordinal), apply.ToString());
        Assert.Contains("previous file was put back", apply.Stdout);
        Assert.Equal(before, File.ReadAllBytes(_cluster.HbaPath()));
        Assert.Equal(loadTime, await _cluster.ScalarAsync<DateTime>("select pg_conf_load_time()"));
        Assert.Empty(Directory.GetFiles(_cluster.DataDirectory, ".pg_hba.conf.*"));
    }

    [Fact]
    public async Task Scram_replication_rule_admits_the_role_and_a_reject_above_it_blocks_it()
    {
        // 13's default password_encryption is md5, which a scram-sha-256 rule does not accept.
        await _cluster.ExecAsync("drop role if exists backup_user; set password_encryption = 'scram-sha-256'; create role backup_user login replication password 'S3cret-pw'");
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", Manifest("repl.yaml", "authoritative", LocalTrust, Replication))).ExitCode);

        async Task<(int Exit, string Error)> IdentifySystemAsync(string password)
        {
            var result = await Engine.Host.ProcessRunner.Default.RunAsync("env",
                [$"PGPASSWORD={password}", Path.Combine(_cluster.ClientBinDirectory, "psql"), "-X", "-At",
                 $"host=127.0.0.1 port={_cluster.Port} user=backup_user dbname=replication replication=true", "-c", "IDENTIFY_SYSTEM"], check: false);
            return (result.ExitCode, result.StandardError);
        }

        var ok = await IdentifySystemAsync("S3cret-pw");
        Assert.True(ok.Exit == 0, ok.Error);
        var wrong = await IdentifySystemAsync("wrong");
        Assert.NotEqual(0, wrong.Exit);
        Assert.Contains("password authentication failed", wrong.Error);   // scram really asked, not trust

        var blockedManifest = Manifest("repl-blocked.yaml", "authoritative", LocalTrust,
            "{type: host, database: replication, user: all, address: 127.0.0.1/32, method: reject}", Replication);
        var plan = await CliRunner.RunAsync("plan", blockedManifest);
        Assert.Contains("hba.rule[2]: can never match: hba.rule[1] (host replication all 127.0.0.1/32 reject)", plan.Stdout);
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", blockedManifest)).ExitCode);
        var blocked = await IdentifySystemAsync("S3cret-pw");
        Assert.NotEqual(0, blocked.Exit);
        Assert.Contains("pg_hba.conf rejects replication connection", blocked.Error);
    }

    [Fact]
    public async Task Lockout_guard_refuses_and_allow_lockout_overrides()
    {
        var file = Manifest("lockout.yaml", "authoritative", HostTrust);
        var before = File.ReadAllBytes(_cluster.HbaPath());

        var plan = await CliRunner.RunAsync("plan", file);
        Assert.Contains("lock-out: pgstate's own connection (local, database postgres, user postgres) uses line ", plan.Stdout);

        var refused = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("refused: lock-out", refused.Stdout);
        Assert.Contains("(local all all trust)", refused.Stdout);
        Assert.Contains("would match no rule", refused.Stdout);
        Assert.Equal(before, File.ReadAllBytes(_cluster.HbaPath()));

        var allowed = await CliRunner.RunAsync("apply", "--auto-approve", "--allow-lockout", file);
        try
        {
            Assert.True(allowed.ExitCode == 0, allowed.ToString());
            Assert.DoesNotContain("local", File.ReadAllText(_cluster.HbaPath()).Split('\n').Where(l => !l.StartsWith('#')));
            var locked = await Assert.ThrowsAnyAsync<Npgsql.NpgsqlException>(() => _cluster.ExecAsync("select 1"));
            Assert.Contains("no pg_hba.conf entry", locked.Message);
        }
        finally
        {
            File.WriteAllBytes(_cluster.HbaPath(), before);
            await _cluster.ReloadBySignalAsync();
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task Hba_test_answers_for_the_desired_and_the_live_file()
    {
        var file = Manifest("test.yaml", "authoritative", LocalTrust, Replication, "{type: host, database: all, user: all, address: 0.0.0.0/0, method: reject}");
        var result = await CliRunner.RunAsync("hba", "test", file, "--database", "replication", "--user", "backup_user", "--address", "127.0.0.1");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("desired: hba.rule[1], line 7 of the rendered pg_hba.conf: host replication backup_user 127.0.0.1/32 scram-sha-256 → method scram-sha-256", result.Stdout);
        // initdb's sample file differs between majors: find the line it has for this connection.
        var line = _original.Split('\n').ToList().FindIndex(l => l.StartsWith("host    replication     all             127.0.0.1/32", StringComparison.Ordinal)) + 1;
        Assert.True(line > 0, _original);
        Assert.Contains($"live:    line {line} of {_cluster.HbaPath()}: host replication all 127.0.0.1/32 trust → method trust", result.Stdout);

        var other = await CliRunner.RunAsync("hba", "test", file, "--database", "app", "--user", "app", "--address", "10.1.2.3");
        Assert.Contains("→ the connection is rejected", other.Stdout);
        Assert.Contains("live:    no rule in", other.Stdout);
    }

    [Fact]
    public async Task Invalid_rules_are_reported_with_positions()
    {
        var file = Manifest("bad.yaml", "authoritative",
            "{type: local, database: all, user: all, address: 10.0.0.0/8, method: trust}",
            "{type: host, database: all, user: all, address: 10.0.0.0/33, method: md5}",
            "{type: host, database: all, user: all, address: 10.0.0.0/8, method: peer}",
            "{type: host, database: all, user: all, address: 10.0.0.0/8, method: cert}",
            "{type: host, database: all, user: all, method: md5}");
        var result = await CliRunner.RunAsync("validate", file);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"{file}:11:49: spec.hba.rules[0]: a local rule takes no address", result.Stderr);
        Assert.Contains($"{file}:12:57: spec.hba.rules[1]: '10.0.0.0/33' is not valid CIDR", result.Stderr);
        Assert.Contains($"{file}:13:77: spec.hba.rules[2]: method peer is only for local rules", result.Stderr);
        Assert.Contains($"{file}:14:77: spec.hba.rules[3]: method cert is only for hostssl rules", result.Stderr);
        Assert.Contains($"{file}:15:10: spec.hba.rules[4]: a host rule needs an address", result.Stderr);
        Assert.Equal(_original, File.ReadAllText(_cluster.HbaPath()));
    }
}
