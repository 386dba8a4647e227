using PgState.Tests.Infrastructure;

namespace PgState.Tests.Hostile;

/// <summary>
/// Manifests that are valid but would leave a host broken or exposed: a list parameter written as one
/// element (a server that cannot start), pgstate's own role locked out, a secret left in a restarted
/// server's environment.
/// </summary>
[Collection(SharedClusterA.Name)]
public class HostSafetyTests(ClusterFixture fixture) : ResetClusterTest(fixture)
{
    [Fact]
    public async Task List_parameters_are_written_element_by_element_and_the_server_restarts_with_them()
    {
        var file = Dir.Write("l.yaml", Cluster.Manifest("db",
            "  settings:\n    shared_preload_libraries: \"pg_stat_statements, auto_explain\"\n    search_path: '\"$user\", public, Other'", restartPolicy: "allowed"));
        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.Contains("shared_preload_libraries = 'pg_stat_statements, auto_explain'", Cluster.AutoConf);
        Assert.Contains("search_path = '\"$user\", public, other'", Cluster.AutoConf);
        Assert.Equal("pg_stat_statements, auto_explain", await Cluster.ShowAsync("shared_preload_libraries"));
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.True(plan.ExitCode == 0, plan.ToString());
    }

    [Fact]
    public async Task Taking_login_or_superuser_from_pgstates_own_role_is_blocked_and_refused()
    {
        var file = Dir.Write("r.yaml", Cluster.Manifest("db", "  roles:\n    - {name: postgres, login: false}"));
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.Equal(2, plan.ExitCode);
        Assert.Contains("BLOCKED: pgstate connects as postgres: NOLOGIN would lock it out of this server", plan.Stdout);
        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.Equal(1, apply.ExitCode);
        Assert.Contains("refused to alter role postgres", apply.Stdout + apply.Stderr);
        Assert.True(await Cluster.ScalarAsync<bool>("select rolcanlogin and rolsuper from pg_roles where rolname = 'postgres'"));

        // An expiry already past (or a connection limit of 0) locks pgstate out as surely as NOLOGIN.
        var expired = Dir.Write("v.yaml", Cluster.Manifest("db", "  roles:\n    - {name: postgres, superuser: true, validUntil: \"2001-01-01 00:00:00+00\"}"));
        var expiredPlan = await CliRunner.RunAsync("plan", expired);
        Assert.Contains("BLOCKED: pgstate connects as postgres: VALID UNTIL", expiredPlan.Stdout);
        Assert.Equal(1, (await CliRunner.RunAsync("apply", "--auto-approve", expired)).ExitCode);
        Assert.True(await Cluster.ScalarAsync<bool>("select rolvaliduntil is null from pg_roles where rolname = 'postgres'"));

        // A role the manifest declares without superuser: true loses it, and the plan says so.
        await Cluster.ExecAsync("create role was_super superuser login");
        try
        {
            var other = Dir.Write("s.yaml", Cluster.Manifest("db", "  roles:\n    - {name: was_super}"));
            var shown = await CliRunner.RunAsync("plan", other);
            Assert.Contains("removes SUPERUSER: the manifest does not say superuser: true for this role", shown.Stdout);
        }
        finally
        {
            await Cluster.ExecAsync("drop role was_super");
        }
    }

    [Fact]
    public async Task A_secret_from_the_environment_does_not_reach_a_server_pgstate_restarted()
    {
        var name = "PGSTATE_TEST_SECRET_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        var secret = "s3cret-" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(name, secret);   // in this process's environment, which children inherit by default
        try
        {
            var file = Dir.Write("e.yaml", Cluster.Manifest("db",
                $"  settings:\n    max_wal_senders: 7\n  roles:\n    - {{name: env_probe_role, password: {{fromEnv: {name}}}}}", restartPolicy: "allowed"));
            var apply = await CliRunner.RunAsync(["apply", "--auto-approve", file], new Dictionary<string, string> { [name] = secret });
            Assert.True(apply.ExitCode == 0, apply.ToString());
            Assert.Contains("restarted", apply.Stdout + apply.Stderr);
            var pid = File.ReadAllLines(Path.Combine(Cluster.DataDirectory, "postmaster.pid"))[0];
            var environ = File.ReadAllText($"/proc/{pid}/environ");
            Assert.DoesNotContain(secret, environ);
            Assert.DoesNotContain(name + "=", environ);
        }
        finally
        {
            Environment.SetEnvironmentVariable(name, null);
            await Cluster.ExecAsync("drop role if exists env_probe_role");
        }
    }
}
