using PgState.Engine.Host;
using PgState.Modules.Replication;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Replication;

/// <summary>Roles with SCRAM passwords that never show, and slots on a real server that logs every statement.</summary>
public abstract class ReplicationTests(ClusterFixture fixture) : IAsyncLifetime
{
    [Collection(Majors.Pg13)]
    public sealed class Pg13(ClusterFixture<Major13> f) : ReplicationTests(f);

    [Collection(Majors.Pg14)]
    public sealed class Pg14(ClusterFixture<Major14> f) : ReplicationTests(f);

    [Collection(Majors.Pg15)]
    public sealed class Pg15(ClusterFixture<Major15> f) : ReplicationTests(f);

    [Collection(Majors.Pg16)]
    public sealed class Pg16(ClusterFixture<Major16> f) : ReplicationTests(f);

    [Collection(Majors.Pg17)]
    public sealed class Pg17(ClusterFixture<Major17> f) : ReplicationTests(f);

    [Collection(Majors.Pg18)]
    public sealed class Pg18(ClusterFixture<Major18> f) : ReplicationTests(f);

    private readonly ScratchCluster _cluster = fixture.Cluster;
    private readonly TempDir _dir = new();

    /// <summary>From a reset cluster that logs every statement (the tests prove no secret reaches the log).</summary>
    public async Task InitializeAsync()
    {
        await fixture.BeginAsync(GetType());
        await _cluster.ResetAllAsync();
        await _cluster.ExecAsync("ALTER SYSTEM SET log_statement = 'all'");
        await _cluster.ExecAsync("ALTER SYSTEM SET log_min_duration_statement = 0");
        await _cluster.ExecAsync("select pg_reload_conf()");
        await Task.Delay(100);
    }

    public Task DisposeAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }

    private const string Role =
        "  roles:\n    - {name: backup_user, login: true, replication: true, inRoles: [pg_read_all_settings], password: {fromEnv: BACKUP_PW}}\n" +
        "  hba:\n    mode: managed-block\n    rules:\n      - {type: host, database: all, user: backup_user, address: 127.0.0.1/32, method: scram-sha-256}\n";

    private async Task<(int Exit, string Error)> ConnectAsync(string password)
    {
        var result = await ProcessRunner.Default.RunAsync("env",
            [$"PGPASSWORD={password}", Path.Combine(_cluster.ClientBinDirectory, "psql"), "-X", "-At",
             $"host=127.0.0.1 port={_cluster.Port} user=backup_user dbname=postgres", "-c", "select rolreplication from pg_roles where rolname = current_user"], check: false);
        return (result.ExitCode, result.StandardOutput + result.StandardError);
    }

    [Fact]
    public async Task Role_gets_scram_password_from_env_and_the_cleartext_never_shows()
    {
        const string first = "Correct-Horse-41";
        const string second = "Battery-Staple-97";
        var file = _dir.Write("role.yaml", _cluster.Manifest("db", Role));
        var env = new Dictionary<string, string> { ["BACKUP_PW"] = first };
        var outputs = new List<string>();

        var plan = await CliRunner.RunAsync(["plan", "--format", "json", file], env);
        outputs.Add(plan.ToString());
        Assert.Equal(2, plan.ExitCode);
        Assert.Contains("\"address\": \"roles.backup_user.password\"", plan.Stdout);
        Assert.Contains("\"before\": \"(sensitive)\",\n          \"after\": \"(sensitive)\"", plan.Stdout);
        var apply = await CliRunner.RunAsync(["apply", "--auto-approve", file], env);
        outputs.Add(apply.ToString());
        Assert.True(apply.ExitCode == 0, apply.ToString());

        Assert.Equal((0, "t\n"), await ConnectAsync(first));
        Assert.NotEqual(0, (await ConnectAsync("wrong")).Exit);
        Assert.False(await _cluster.ScalarAsync<bool>("select rolsuper from pg_roles where rolname = 'backup_user'"));
        Assert.True(await _cluster.ScalarAsync<bool>("select pg_has_role('backup_user', 'pg_read_all_settings', 'member')"));
        Assert.StartsWith("SCRAM-SHA-256$4096:", await _cluster.ScalarAsync<string>("select rolpassword from pg_authid where rolname = 'backup_user'"));

        var same = await CliRunner.RunAsync(["plan", file], env);
        outputs.Add(same.ToString());
        Assert.True(same.ExitCode == 0, same.ToString());

        env["BACKUP_PW"] = second;
        var differs = await CliRunner.RunAsync(["plan", file], env);
        outputs.Add(differs.ToString());
        Assert.Equal(2, differs.ExitCode);
        Assert.Contains("~ roles.backup_user.password: \"(sensitive)\" -> \"(sensitive)\"", differs.Stdout);
        Assert.Contains("password differs", differs.Stdout);
        var json = await CliRunner.RunAsync(["plan", "--format", "json", "--out", Path.Combine(_dir.Path, "plan.json"), file], env);
        outputs.Add(json.ToString());
        outputs.Add(File.ReadAllText(Path.Combine(_dir.Path, "plan.json")));
        Assert.Contains("\"sensitive\": true", json.Stdout);

        var fix = await CliRunner.RunAsync(["apply", "--auto-approve", file], env);
        outputs.Add(fix.ToString());
        Assert.Equal(0, fix.ExitCode);
        Assert.Equal(0, (await ConnectAsync(second)).Exit);
        Assert.NotEqual(0, (await ConnectAsync(first)).Exit);
        Assert.Equal(0, (await CliRunner.RunAsync(["plan", file], env)).ExitCode);

        var serverLog = File.ReadAllText(_cluster.LogFile);
        Assert.Contains("CREATE ROLE \"backup_user\"", serverLog);     // the statements were logged …
        Assert.DoesNotContain("SCRAM-SHA-256$", serverLog);              // … except the one carrying the verifier
        foreach (var text in outputs.Append(serverLog))
        {
            Assert.DoesNotContain(first, text);                         // … but no cleartext anywhere
            Assert.DoesNotContain(second, text);
        }
    }

    /// <summary>
    /// Passwords SASLprep changes (a no-break space, a ligature, full-width letters): the verifier
    /// pgstate computes lets libpq's client (which SASLpreps too) log in, and a verifier the server
    /// made from the same password is recognised as the same, so apply does not break it again.
    /// </summary>
    [Theory]
    [InlineData("a\u00A0b\uFB01\uFF21-pw")]
    [InlineData("caf\u0065\u0301-\u2163")]
    [InlineData("emoji-\U0001F600-is-not-prepared")]
    public async Task Passwords_that_saslprep_changes_log_in_and_compare_as_postgresql_does(string password)
    {
        var file = _dir.Write("sasl.yaml", _cluster.Manifest("db", Role));
        var env = new Dictionary<string, string> { ["BACKUP_PW"] = password };
        Assert.Equal(0, (await CliRunner.RunAsync(["apply", "--auto-approve", file], env)).ExitCode);
        Assert.Equal((0, "t\n"), await ConnectAsync(password));
        Assert.Equal(0, (await CliRunner.RunAsync(["plan", file], env)).ExitCode);

        // The server computes the verifier itself (with its own SASLprep): pgstate must see the same password.
        await using (var c = await _cluster.OpenAsync())
        {
            await using (var set = new Npgsql.NpgsqlCommand("set password_encryption = 'scram-sha-256'", c))
            {
                await set.ExecuteNonQueryAsync();
            }
            string alter;
            await using (var format = new Npgsql.NpgsqlCommand("select format('alter role backup_user password %L', $1::text)", c))
            {
                format.Parameters.Add(new Npgsql.NpgsqlParameter { Value = password });
                alter = (string)(await format.ExecuteScalarAsync())!;
            }
            await using var run = new Npgsql.NpgsqlCommand(alter, c);
            await run.ExecuteNonQueryAsync();
        }
        var plan = await CliRunner.RunAsync(["plan", file], env);
        Assert.True(plan.ExitCode == 0, plan.ToString());
        Assert.Equal((0, "t\n"), await ConnectAsync(password));
        await _cluster.ExecAsync("drop role backup_user");
    }

    /// <summary>
    /// Every statement pgstate sends, with the database set to standard_conforming_strings=off and
    /// backslash_quote=on (where a \' ends a string): values with quotes and backslashes arrive as
    /// written and no injected statement runs.
    /// </summary>
    [Fact]
    public async Task Sql_stays_data_when_the_database_reads_backslashes_as_escapes()
    {
        await _cluster.ExecAsync("alter database postgres set standard_conforming_strings = off; alter database postgres set backslash_quote = on");
        try
        {
            const string prefix = "x\\'; CREATE TABLE pwned_prefix(); --";
            const string application = "a\\' ; CREATE TABLE pwned_app(); --";
            const string name = "it's \\ \"quoted\"";
            // A list parameter goes as one literal per element: each must hold as well.
            const string list = "\"x\\'; CREATE TABLE pwned_list(); --\", public";
            static string Yq(string v) => "'" + v.Replace("'", "''", StringComparison.Ordinal) + "'";
            var file = _dir.Write("sql.yaml", _cluster.Manifest("db",
                $"  settings:\n    log_line_prefix: {Yq(prefix)}\n    application_name: {Yq(application)}\n    search_path: {Yq(list)}\n" +
                $"  roles:\n    - {{name: {Yq(name)}, validUntil: \"2031-02-03 04:05:06+00\", inRoles: [pg_monitor], password: {{fromEnv: BACKUP_PW}}}}\n" +
                "  slots:\n    - {name: sql_slot}\n"));
            var env = new Dictionary<string, string> { ["BACKUP_PW"] = "quote'back\\slash" };
            var apply = await CliRunner.RunAsync(["apply", "--auto-approve", file], env);
            Assert.True(apply.ExitCode == 0, apply.ToString());
            var again = await CliRunner.RunAsync(["plan", file], env);
            Assert.True(again.ExitCode == 0, again.ToString());
            Assert.Equal(prefix, await _cluster.ScalarAsync<string>("select setting from pg_settings where name = 'log_line_prefix'"));
            Assert.Equal("\"x\\'; CREATE TABLE pwned_list(); --\", public", await _cluster.ScalarAsync<string>("select setting from pg_file_settings where name = 'search_path'"));
            Assert.Equal(1L, await _cluster.ScalarAsync<long>($"select count(*) from pg_roles where rolname = {Sql.Literal(name)}"));
            Assert.Equal(0L, await _cluster.ScalarAsync<long>("select count(*) from pg_class where relname like 'pwned%'"));

            // Remove them again, through the same statements (RESET, DROP ROLE, drop slot).
            var remove = _dir.Write("sql-remove.yaml", _cluster.Manifest("db",
                "  settings:\n    log_line_prefix: null\n    application_name: null\n    search_path: null\n" +
                $"  roles:\n    - {{name: {Yq(name)}, state: absent}}\n  slots:\n    - {{name: sql_slot, state: absent}}\n"));
            var removed = await CliRunner.RunAsync(["apply", "--auto-approve", remove], env);
            Assert.True(removed.ExitCode == 0, removed.ToString());
            Assert.Equal(0L, await _cluster.ScalarAsync<long>("select count(*) from pg_class where relname like 'pwned%'"));
        }
        finally
        {
            await _cluster.ExecAsync("alter database postgres reset standard_conforming_strings; alter database postgres reset backslash_quote");
            await _cluster.ExecAsync("alter system reset all; select pg_reload_conf()");
        }
    }

    [Fact]
    public async Task Stored_verifier_from_the_server_is_recognised()
    {
        await _cluster.ExecAsync("set password_encryption = 'scram-sha-256'; create role verifier_check login password 'from-the-server'");
        var stored = await _cluster.ScalarAsync<string>("select rolpassword from pg_authid where rolname = 'verifier_check'");
        Assert.True(Scram.Matches(stored, "from-the-server"));
        Assert.False(Scram.Matches(stored, "something-else"));
    }

    [Fact]
    public async Task An_active_slot_is_never_dropped_and_drops_once_inactive()
    {
        var present = _dir.Write("slot.yaml", _cluster.Manifest("db", "  slots:\n    - {name: backup_wal, type: physical}"));
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", present)).ExitCode);
        Assert.Equal(1L, await _cluster.ScalarAsync<long>("select count(*) from pg_replication_slots where slot_name = 'backup_wal'"));

        // A walsender streaming from the slot makes it active. Npgsql's replication protocol, not
        // Debian's pg_receivewal: client tools of 15 refuse to stream from a newer server.
        await using var replication = new Npgsql.Replication.PhysicalReplicationConnection(_cluster.ConnectionString);
        await replication.Open();
        var system = await replication.IdentifySystem();
        using var stop = new CancellationTokenSource();
        var receiver = Task.Run(async () =>
        {
            try
            {
                await foreach (var _ in replication.StartReplication(new Npgsql.Replication.PhysicalReplicationSlot("backup_wal"), system.XLogPos, stop.Token))
                {
                }
            }
            catch (Exception e) when (e is OperationCanceledException or Npgsql.NpgsqlException)
            {
            }
        });
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!await _cluster.ScalarAsync<bool>("select active from pg_replication_slots where slot_name = 'backup_wal'") && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
            var absent = _dir.Write("absent.yaml", _cluster.Manifest("db", "  slots:\n    - {name: backup_wal, state: absent}"));
            var plan = await CliRunner.RunAsync("plan", absent);
            Assert.Contains("- slots.backup_wal", plan.Stdout);
            Assert.Contains("BLOCKED: the slot is active (pid ", plan.Stdout);
            var refused = await CliRunner.RunAsync("apply", "--auto-approve", absent);
            Assert.Equal(1, refused.ExitCode);
            Assert.Contains("refused to drop slot backup_wal: the slot is active", refused.Stdout);
            Assert.Equal(1L, await _cluster.ScalarAsync<long>("select count(*) from pg_replication_slots where slot_name = 'backup_wal'"));

            await stop.CancelAsync();
            await receiver;
            await replication.DisposeAsync();
            deadline = DateTime.UtcNow.AddSeconds(30);
            while (await _cluster.ScalarAsync<bool>("select active from pg_replication_slots where slot_name = 'backup_wal'") && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
            var drop = await CliRunner.RunAsync("apply", "--auto-approve", absent);
            Assert.True(drop.ExitCode == 0, drop.ToString());
            Assert.Equal(0L, await _cluster.ScalarAsync<long>("select count(*) from pg_replication_slots where slot_name = 'backup_wal'"));
        }
        finally
        {
            await stop.CancelAsync();
            await receiver;
        }
    }

    [Fact]
    public async Task Prune_removes_only_unlisted_inactive_slots_and_retention_warns()
    {
        foreach (var name in new[] { "keep_me", "stale_a", "stale_b" })
        {
            await _cluster.ExecAsync($"select pg_create_physical_replication_slot('{name}', true)");
        }
        await _cluster.ExecAsync("create table if not exists churn(x text); insert into churn select repeat('x', 1000) from generate_series(1, 2000)");
        var file = _dir.Write("prune.yaml", _cluster.Manifest("db", "  slots:\n    - {name: keep_me}\n  slotsPrune: true\n  slotRetentionWarn: 1kB"));
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains("- slots.stale_a", plan.Stdout);
        Assert.Contains("- slots.stale_b", plan.Stdout);
        Assert.DoesNotContain("- slots.keep_me", plan.Stdout);
        Assert.Contains("slots.keep_me: retains ", plan.Stdout);
        Assert.Contains("(more than 1 kB) and is inactive", plan.Stdout);
        Assert.Contains("max_slot_wal_keep_size is unlimited (-1) while slots exist", plan.Stdout);
        Assert.Equal(0, (await CliRunner.RunAsync("apply", "--auto-approve", file)).ExitCode);
        Assert.Equal("keep_me", await _cluster.ScalarAsync<string>("select string_agg(slot_name, ',') from pg_replication_slots"));
    }

    [Fact]
    public async Task Slots_past_the_limit_fail_cleanly_and_a_restart_only_limit_is_activated_before_them()
    {
        var slots = string.Concat(Enumerable.Range(1, 12).Select(i => $"    - {{name: many{i}}}\n"));
        var tooMany = _dir.Write("many.yaml", _cluster.Manifest("db", "  slots:\n" + slots, "allowed"));
        var failed = await CliRunner.RunAsync("apply", "--auto-approve", tooMany);
        Assert.Equal(1, failed.ExitCode);
        Assert.Contains("✗ slots.many11: 53400: all replication slots are in use", failed.Stdout);
        Assert.DoesNotContain("internal error", failed.Stderr);

        var withLimit = _dir.Write("limit.yaml", _cluster.Manifest("db", "  settings: {max_replication_slots: 30}\n  slots:\n" + slots, "allowed"));
        var applied = await CliRunner.RunAsync("apply", "--auto-approve", withLimit);
        Assert.True(applied.ExitCode == 0, applied.ToString());
        Assert.True(applied.Stderr.IndexOf("restarting PostgreSQL for archiving", StringComparison.Ordinal) < applied.Stderr.IndexOf("slots.many11: create", StringComparison.Ordinal));
        Assert.Equal(12L, await _cluster.ScalarAsync<long>("select count(*) from pg_replication_slots where slot_name like 'many%'"));
        Assert.Equal(0, (await CliRunner.RunAsync("plan", withLimit)).ExitCode);
        await _cluster.ExecAsync("select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name like 'many%'");
    }

    [Fact]
    public async Task A_slot_whose_WAL_was_removed_is_reported_with_the_reason_the_server_gives()
    {
        await _cluster.ExecAsync("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
        await _cluster.ExecAsync("select pg_reload_conf()");
        await _cluster.ExecAsync("select pg_create_physical_replication_slot('doomed', true)");
        try
        {
            // Past max_slot_wal_keep_size, a checkpoint removes the WAL the slot holds and invalidates it.
            await _cluster.ExecAsync("create table if not exists filler(x text)");
            for (var i = 0; i < 6 && await _cluster.ScalarAsync<string>("select coalesce(wal_status, '') from pg_replication_slots where slot_name = 'doomed'") != "lost"; i++)
            {
                await _cluster.ExecAsync("insert into filler select repeat('x', 1000) from generate_series(1, 3000); select pg_switch_wal(); checkpoint");
            }
            Assert.Equal("lost", await _cluster.ScalarAsync<string>("select wal_status from pg_replication_slots where slot_name = 'doomed'"));

            var file = _dir.Write("lost.yaml", _cluster.Manifest("db", "  slots:\n    - {name: doomed}\n  checks: {slotRetentionWarn: 10GB}"));
            var plan = await CliRunner.RunAsync("plan", file);
            var check = await CliRunner.RunAsync("check", file);
            Assert.Equal(2, check.ExitCode);
            if (_cluster.Major >= 17)
            {
                // 17 says why: invalidation_reason.
                Assert.Contains("slots.doomed: invalidated (wal_removed, wal_status lost): its consumer must be rebuilt", plan.Stdout);
                Assert.Contains("slot doomed was invalidated (wal_removed, wal_status lost)", check.Stdout);
            }
            else
            {
                Assert.Contains("slots.doomed: wal_status is lost: the WAL this slot needs is gone", plan.Stdout);
                Assert.Contains("slot doomed has wal_status lost", check.Stdout);
            }
        }
        finally
        {
            await _cluster.ExecAsync("select pg_drop_replication_slot('doomed')");
            await _cluster.ExecAsync("ALTER SYSTEM RESET max_slot_wal_keep_size");
            await _cluster.ExecAsync("select pg_reload_conf()");
        }
    }
}
