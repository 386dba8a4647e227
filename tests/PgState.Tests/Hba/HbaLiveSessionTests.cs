using Npgsql;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Hba;

/// <summary>Live sessions (pg_stat_activity) an hba change would no longer admit: named in the plan, refused by apply unless --allow-lockout.</summary>
[Collection(SharedClusterB.Name)]
public class HbaLiveSessionTests(ClusterFixture fixture) : IAsyncLifetime
{
    private readonly ScratchCluster _cluster = fixture.Cluster;
    private readonly TempDir _dir = new();
    private byte[] _original = [];

    public async Task InitializeAsync()
    {
        await fixture.BeginAsync(GetType());
        _original = File.ReadAllBytes(_cluster.HbaPath());
        await _cluster.ExecAsync("do $$ begin if not exists (select 1 from pg_roles where rolname = 'app') then create role app login; end if; end $$");
        if (!await _cluster.ScalarAsync<bool>("select exists(select 1 from pg_database where datname = 'orders')"))
        {
            await _cluster.ExecAsync("create database orders");
        }
    }

    public async Task DisposeAsync()
    {
        File.WriteAllBytes(_cluster.HbaPath(), _original);
        await _cluster.ReloadBySignalAsync();
        _dir.Dispose();
    }

    private async Task<NpgsqlConnection> ConnectAsApp()
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = _cluster.Port, Username = "app", Database = "orders", Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    private string Manifest(params string[] rules) =>
        _dir.Write("sessions.yaml", _cluster.Manifest("db", "  hba:\n    rules:\n" + string.Concat(rules.Select(r => $"      - {r}\n"))));

    [Fact]
    public async Task A_rule_that_rejects_a_live_session_is_named_in_the_plan_and_refused_without_allow_lockout()
    {
        await using var app = await ConnectAsApp();
        var file = Manifest(
            "{type: local, database: all, user: all, method: trust}",
            "{type: host, database: all, user: postgres, address: 127.0.0.1/32, method: trust}",
            "{type: host, database: orders, user: app, address: 127.0.0.1/32, method: reject}",
            "{type: host, database: all, user: all, address: 127.0.0.1/32, method: trust}");

        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 2, plan.ToString());
        Assert.Matches(@"! hba\.rule\[2\]: live sessions: 1 session of app@127\.0\.0\.1 → orders would be rejected by hba\.rule\[2\] \(host orders app 127\.0\.0\.1/32 reject\); today line \d+ \(host all all 127\.0\.0\.1/32 trust\) admits them; apply refuses unless --allow-lockout", plan.Stdout);
        var markdown = await CliRunner.RunAsync("plan", "--format", "markdown", file);
        Assert.Contains("- `hba.rule[2]`: live sessions: 1 session of app@127.0.0.1 → orders would be rejected by hba.rule[2]", markdown.Stdout);

        var refused = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("refused: the new pg_hba.conf would no longer admit live sessions: 1 session of app@127.0.0.1 → orders would be rejected by hba.rule[2]", refused.Stdout + refused.Stderr);
        Assert.Equal(_original, File.ReadAllBytes(_cluster.HbaPath()));

        var allowed = await CliRunner.RunAsync("apply", "--auto-approve", "--allow-lockout", file);
        Assert.True(allowed.ExitCode == 0, allowed.ToString());
        Assert.Contains("(--allow-lockout given)", allowed.Stdout);
        Assert.Equal(0, (await CliRunner.RunAsync("plan", file)).ExitCode);
    }

    [Fact]
    public async Task Another_method_for_a_live_session_is_a_warning_that_does_not_block_apply()
    {
        await using var app = await ConnectAsApp();
        var file = Manifest(
            "{type: local, database: all, user: all, method: trust}",
            "{type: host, database: orders, user: app, address: 127.0.0.1/32, method: scram-sha-256}",
            "{type: host, database: all, user: all, address: 127.0.0.1/32, method: trust}");
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.Matches(@"live sessions: 1 session of app@127\.0\.0\.1 → orders would be admitted by hba\.rule\[1\] with scram-sha-256 instead of trust \(line \d+ today\)", plan.Stdout);
        Assert.DoesNotContain("would be rejected", plan.Stdout);
        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.True(apply.ExitCode == 0, apply.ToString());
    }
}
