using PgState.Tests.Infrastructure;

namespace PgState.Tests.Hba;

/// <summary>
/// pg_hba.conf include directives (PostgreSQL 16 and later): rules of included files are read in the
/// server's order and named by file in plans; a managed block works in an included file and in the
/// main file; authoritative mode drops the directives and shows the rules that go, file by file.
/// </summary>
public abstract class HbaIncludeTests(ClusterFixture fixture) : IAsyncLifetime
{
    [Collection(Majors.Pg16)]
    public sealed class Pg16(ClusterFixture<Major16> f) : HbaIncludeTests(f);

    [Collection(Majors.Pg17)]
    public sealed class Pg17(ClusterFixture<Major17> f) : HbaIncludeTests(f);

    [Collection(Majors.Pg18)]
    public sealed class Pg18(ClusterFixture<Major18> f) : HbaIncludeTests(f);

    private readonly ScratchCluster _cluster = fixture.Cluster;
    private readonly TempDir _dir = new();
    private string _original = "";

    private string IncludeDir => Path.Combine(_cluster.DataDirectory, "hba.d");

    private string AppFile => Path.Combine(IncludeDir, "05-app.conf");

    private string BlockFile => Path.Combine(IncludeDir, "10-pgstate.conf");

    private const string AppRule = "host    all    app    10.0.0.0/8    scram-sha-256\n";
    private const string Replication = "{type: host, database: replication, user: backup_user, address: 127.0.0.1/32, method: scram-sha-256}";
    private const string LocalTrust = "{type: local, database: all, user: postgres, method: trust}";

    public async Task InitializeAsync()
    {
        await fixture.BeginAsync(GetType());
        var initdb = _cluster.HbaPath() + ".initdb";
        _original = File.Exists(initdb) ? File.ReadAllText(initdb) : File.ReadAllText(_cluster.HbaPath());
        File.WriteAllText(initdb, _original);
        if (Directory.Exists(IncludeDir))
        {
            Directory.Delete(IncludeDir, recursive: true);
        }
        Directory.CreateDirectory(IncludeDir);
        File.WriteAllText(AppFile, AppRule);
        // The directive comes first, so the included rules are read before initdb's.
        File.WriteAllText(_cluster.HbaPath(), "include_dir hba.d\n" + _original);
        await _cluster.ChownToServerAsync(IncludeDir);
        await _cluster.ReloadBySignalAsync();
    }

    public async Task DisposeAsync()
    {
        File.WriteAllText(_cluster.HbaPath(), _original);
        await _cluster.ReloadBySignalAsync();
        _dir.Dispose();
    }

    private string Manifest(string name, string mode, params string[] rules) =>
        _dir.Write(name, _cluster.Manifest("db", $"  hba:\n    mode: {mode}\n    rules:\n" + string.Concat(rules.Select(r => $"      - {r}\n"))));

    private async Task<List<(string? File, int Line, string? Error)>> ServerRulesAsync()
    {
        await using var c = await _cluster.OpenAsync();
        await using var cmd = new Npgsql.NpgsqlCommand("select file_name, line_number, error from pg_hba_file_rules order by rule_number nulls last", c);
        await using var r = await cmd.ExecuteReaderAsync();
        var rows = new List<(string?, int, string?)>();
        while (await r.ReadAsync())
        {
            rows.Add((r.IsDBNull(0) ? null : r.GetString(0), r.IsDBNull(1) ? 0 : r.GetInt32(1), r.IsDBNull(2) ? null : r.GetString(2)));
        }
        return rows;
    }

    [Fact]
    public async Task Managed_block_in_an_included_file_is_found_written_there_and_named_in_the_plan()
    {
        File.WriteAllText(BlockFile, "# BEGIN pgstate\n# END pgstate\n");
        await _cluster.ChownToServerAsync(BlockFile);
        var main = File.ReadAllBytes(_cluster.HbaPath());
        var file = Manifest("block.yaml", "managed-block", Replication);

        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains($"+ hba.rule[0] = \"host replication backup_user 127.0.0.1/32 scram-sha-256 (position 1 in {BlockFile})\"", plan.Stdout);
        Assert.DoesNotContain("rules in", plan.Stdout);   // no "pgstate reads N rules … the server reads M" warning

        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.Equal(main, File.ReadAllBytes(_cluster.HbaPath()));   // pg_hba.conf itself untouched
        Assert.Equal(AppRule, File.ReadAllText(AppFile));
        Assert.Contains("host     replication      backup_user      127.0.0.1/32             scram-sha-256", File.ReadAllText(BlockFile));
        var rules = await ServerRulesAsync();
        Assert.All(rules, r => Assert.Null(r.Error));
        Assert.Equal([AppFile, BlockFile], rules.Take(2).Select(r => r.File));   // in the server's order: the directory's files, by name

        var again = await CliRunner.RunAsync("plan", file);
        Assert.True(again.ExitCode == 0, again.ToString());

        var test = await CliRunner.RunAsync("hba", "test", file, "--database", "replication", "--user", "backup_user", "--address", "127.0.0.1");
        Assert.True(test.ExitCode == 0, test.ToString());
        Assert.Contains($"live:    line 2 of {BlockFile}: host replication backup_user 127.0.0.1/32 scram-sha-256 → method scram-sha-256", test.Stdout);
    }

    [Fact]
    public async Task Managed_block_in_the_main_file_keeps_the_include_directive_and_its_rules()
    {
        var file = Manifest("main-block.yaml", "managed-block", Replication);
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains("+ hba.rule[0] = \"host replication backup_user 127.0.0.1/32 scram-sha-256 (position 1)\"", plan.Stdout);
        Assert.DoesNotContain("hba.line[", plan.Stdout);   // the included rule is not ours to remove

        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        var text = File.ReadAllText(_cluster.HbaPath());
        Assert.StartsWith("# BEGIN pgstate", text);
        Assert.Contains("\ninclude_dir hba.d\n", text);
        Assert.Equal(AppRule, File.ReadAllText(AppFile));
        Assert.Contains(await ServerRulesAsync(), r => r.File == AppFile && r.Error is null);
        Assert.Equal(0, (await CliRunner.RunAsync("plan", file)).ExitCode);
    }

    [Fact]
    public async Task Authoritative_mode_drops_the_directives_and_shows_each_included_rule_that_goes()
    {
        var file = Manifest("auth.yaml", "authoritative", LocalTrust, Replication);
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains($"- hba.line[{AppFile}:1] (was \"host all app 10.0.0.0/8 scram-sha-256 (line 1 of {AppFile})\")", plan.Stdout);
        Assert.Contains("authoritative mode writes the whole file without them, so the server stops reading the 1 rule(s) they bring in", plan.Stdout);

        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.DoesNotContain("include_dir", File.ReadAllText(_cluster.HbaPath()));
        Assert.Equal(AppRule, File.ReadAllText(AppFile));   // the included file stays, unchanged
        var rules = await ServerRulesAsync();
        Assert.Equal(2, rules.Count);
        Assert.All(rules, r => Assert.Equal(_cluster.HbaPath(), r.File));
        Assert.Equal(0, (await CliRunner.RunAsync("plan", file)).ExitCode);
    }

    [Fact]
    public async Task A_rule_the_server_rejects_in_an_included_file_puts_that_file_back()
    {
        File.WriteAllText(BlockFile, "# BEGIN pgstate\n# END pgstate\n");
        await _cluster.ChownToServerAsync(BlockFile);
        var before = File.ReadAllBytes(BlockFile);
        var bad = "{type: host, database: all, user: all, address: 10.0.0.0/8, method: scram-sha-256, options: {ldapserver: ldap.example.com}}";
        var apply = await CliRunner.RunAsync("apply", "--auto-approve", Manifest("bad.yaml", "managed-block", bad));
        Assert.Equal(1, apply.ExitCode);
        Assert.True(apply.Stdout.Contains($"the server rejects the new 10-pgstate.conf: {BlockFile} line 2: authentication option \"ldapserver\"", StringComparison.Ordinal), apply.ToString());
        Assert.Contains("previous file was put back", apply.Stdout);
        Assert.Equal(before, File.ReadAllBytes(BlockFile));
        Assert.Empty(Directory.GetFiles(IncludeDir, ".10-pgstate.conf.*"));
    }

    [Fact]
    public async Task A_missing_include_is_a_plan_warning_naming_the_line()
    {
        File.WriteAllText(_cluster.HbaPath(), "include missing.conf\ninclude_if_exists optional.conf\n" + _original);
        var plan = await CliRunner.RunAsync("plan", Manifest("missing.yaml", "managed-block", Replication));
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Contains($"line 1 of {_cluster.HbaPath()}: include {Path.Combine(_cluster.DataDirectory, "missing.conf")} does not exist", plan.Stdout);
        Assert.DoesNotContain("optional.conf", plan.Stdout);   // include_if_exists: skipped, as the server does
    }
}

/// <summary>Before PostgreSQL 16 an include line is no directive: the server rejects it, and the plan says so.</summary>
public abstract class HbaIncludeBefore16Tests(ClusterFixture fixture) : IAsyncLifetime
{
    private readonly ScratchCluster cluster = fixture.Cluster;

    public Task InitializeAsync() => fixture.BeginAsync(GetType());

    Task IAsyncLifetime.DisposeAsync() => Task.CompletedTask;

    [Collection(Majors.Pg13)]
    public sealed class Pg13(ClusterFixture<Major13> f) : HbaIncludeBefore16Tests(f);

    [Collection(Majors.Pg14)]
    public sealed class Pg14(ClusterFixture<Major14> f) : HbaIncludeBefore16Tests(f);

    [Collection(Majors.Pg15)]
    public sealed class Pg15(ClusterFixture<Major15> f) : HbaIncludeBefore16Tests(f);

    [Fact]
    public async Task An_include_line_is_reported_as_the_server_reports_it()
    {
        var original = File.ReadAllText(cluster.HbaPath());
        using var dir = new TempDir();
        try
        {
            File.WriteAllText(cluster.HbaPath(), "include_dir hba.d\n" + original);
            var file = dir.Write("m.yaml", cluster.Manifest("db", "  hba:\n    mode: managed-block\n    rules:\n      - {type: local, database: all, user: postgres, method: trust}\n"));
            var plan = await CliRunner.RunAsync("plan", file);
            Assert.True(plan.ExitCode == 2, plan.ToString());
            Assert.Contains("the server reports an error in the live pg_hba.conf today: line 1: invalid connection type \"include_dir\"", plan.Stdout);
        }
        finally
        {
            File.WriteAllText(cluster.HbaPath(), original);
        }
    }
}
