using PgState.Engine.Host;
using PgState.Tests.Infrastructure;

namespace PgState.Tests;

/// <summary>A few runs of the real pgstate executable: exit codes, stdout for data, stderr for progress.</summary>
[Collection(SharedClusterA.Name)]
public class EndToEndTests(ClusterFixture fixture) : IAsyncLifetime
{
    private readonly ScratchCluster _cluster = fixture.Cluster;

    public Task InitializeAsync() => fixture.BeginAsync(GetType());

    Task IAsyncLifetime.DisposeAsync() => Task.CompletedTask;

    private static async Task<ProcessResult> RunAsync(params string[] args) => await PgStateBinary.RunAsync(args);

    [Fact]
    public async Task Help_lists_the_commands()
    {
        var result = await RunAsync("--help");
        Assert.Equal(0, result.ExitCode);
        foreach (var command in new[] { "validate", "plan", "apply" })
        {
            Assert.Contains(command, result.StandardOutput);
        }
    }

    [Fact]
    public async Task Plan_prints_data_on_stdout_and_progress_on_stderr_with_exit_codes()
    {
        using var dir = new TempDir();
        var file = dir.Write("e2e.yaml", _cluster.Manifest("e2e", "  settings:\n    archive_timeout: 13min"));
        var plan = await RunAsync("plan", file);
        Assert.Equal(2, plan.ExitCode);
        Assert.StartsWith("pgstate plan for host \"e2e\"", plan.StandardOutput);
        Assert.DoesNotContain("connecting", plan.StandardOutput);
        Assert.Contains("pgstate: connecting to", plan.StandardError);
        Assert.DoesNotContain("\u001b[", plan.StandardOutput);

        var json = await RunAsync("plan", "--format", "json", file);
        Assert.Equal(2, json.ExitCode);
        using var parsed = System.Text.Json.JsonDocument.Parse(json.StandardOutput);
        Assert.Equal(2, parsed.RootElement.GetProperty("formatVersion").GetInt32());

        var apply = await RunAsync("apply", "--auto-approve", file);
        Assert.Equal(0, apply.ExitCode);
        Assert.Equal(0, (await RunAsync("plan", file)).ExitCode);
        await _cluster.ResetAsync();
    }

    /// <summary>
    /// Issue 8/9: reading the host for a plan spawns no process (stat, xattrs and libselinux in
    /// process, calendars parsed in process, catalogs in one batch): strace -f sees one execve, the
    /// binary's own, for a manifest that touches every module.
    /// </summary>
    [Fact]
    public async Task A_plan_of_every_module_starts_no_process()
    {
        using var dir = new TempDir();
        var archive = Path.Combine(dir.Path, "archive");
        var file = dir.Write("every.yaml", _cluster.Manifest("every",
            $"  archiving: {{walLevel: replica, method: copy, destination: {archive}, timeout: 5min}}\n" +
            "  settings: {max_wal_senders: 10}\n" +
            $"  directories: [{{path: {archive}, owner: postgres, group: postgres, mode: \"0700\"}}]\n" +
            $"  selinux: {{fileContexts: [{{path: \"{archive}(/.*)?\", type: postgresql_db_t}}]}}\n" +
            "  hba: {mode: managed-block, rules: [{type: local, database: all, user: postgres, method: trust}]}\n" +
            "  roles: [{name: every_role, replication: true}]\n" +
            "  slots: [{name: every_slot}]\n" +
            $"  backups: [{{name: nightly, schedule: \"Mon..Fri *-*-* 02:30:00 Europe/Paris\", destination: {dir.Path}/backups, drill: {{schedule: daily, workDirectory: {dir.Path}/drills}}}}]\n" +
            "  checks: {archiveLagWarn: 10min}"));
        var trace = Path.Combine(dir.Path, "trace");
        var env = new Dictionary<string, string?>();
        foreach (var (k, v) in CliRunner.HostEnvironment)
        {
            env[k] = v;
        }
        var plan = await ProcessRunner.Default.RunAsync("strace", ["-f", "-qq", "-e", "trace=execve,execveat,vfork", "-o", trace, PgStateBinary.Path, "plan", file],
            TimeSpan.FromSeconds(60), check: false, environment: env);
        Assert.True(plan.ExitCode == 2, plan.StandardOutput + plan.StandardError);
        var spawned = File.ReadAllLines(trace).Where(l => l.Contains("execve", StringComparison.Ordinal) || l.Contains("vfork", StringComparison.Ordinal)).ToList();
        Assert.True(spawned.Count == 1, string.Join('\n', spawned));
        Assert.Contains(PgStateBinary.Path, spawned[0]);
    }

    [Fact]
    public async Task Unreachable_server_is_an_error_with_exit_1()
    {
        using var dir = new TempDir();
        var file = dir.Write("down.yaml", _cluster.Manifest("down", "  settings: {archive_timeout: 1min}").Replace($"port: {_cluster.Port}", "port: 1"));
        var plan = await RunAsync("plan", file);
        Assert.Equal(1, plan.ExitCode);
        Assert.Equal("", plan.StandardOutput);
        Assert.Contains("cannot connect to postgres@", plan.StandardError);
    }

    [Fact]
    public async Task Invalid_manifest_gives_file_line_col_and_exit_1()
    {
        using var dir = new TempDir();
        var file = dir.Write("bad.yaml", _cluster.Manifest("bad", "  archiving: {method: scp}"));
        var result = await RunAsync("validate", file);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"{file}:8:23: spec.archiving.method: \"scp\" is not one of", result.StandardError);
    }
}
