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
