using PgState.Tests.Infrastructure;

namespace PgState.Tests.Archiving;

/// <summary>What the command line does around a plan (confirmation, colour, JSON): the same on every server, so run on Debian's.</summary>
public class ApplyCliTests(ClusterFixture fixture) : IClassFixture<ClusterFixture>, IAsyncLifetime
{
    private readonly ScratchCluster _cluster = fixture.Cluster;
    private readonly TempDir _dir = new();

    public async Task InitializeAsync() => await _cluster.ResetAsync();

    public Task DisposeAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Apply_refuses_without_a_terminal_and_without_auto_approve()
    {
        var file = _dir.Write("confirm.yaml", _cluster.Manifest("db", "  settings:\n    archive_timeout: 11min"));
        var refused = await CliRunner.RunAsync(["apply", file]);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("refusing to apply without confirmation", refused.Stderr);
        Assert.Equal("0", await _cluster.ShowAsync("archive_timeout"));

        var declined = await CliRunner.RunAsync(["apply", file], input: "no\n", terminal: true);
        Assert.Equal(1, declined.ExitCode);
        Assert.Contains("Apply cancelled.", declined.Stderr);
        Assert.Equal("0", await _cluster.ShowAsync("archive_timeout"));

        var accepted = await CliRunner.RunAsync(["apply", file], input: "yes\n", terminal: true);
        Assert.True(accepted.ExitCode == 0, accepted.ToString());
        Assert.Contains("Only 'yes' will be accepted", accepted.Stderr);
        Assert.Equal("660", await _cluster.ShowAsync("archive_timeout"));
    }

    [Fact]
    public async Task Colour_only_on_a_terminal_and_never_with_NO_COLOR()
    {
        var file = _dir.Write("colour.yaml", _cluster.Manifest("db", "  settings:\n    archive_timeout: 12min"));
        var piped = await CliRunner.RunAsync(["plan", file]);
        Assert.DoesNotContain("\u001b[", piped.Stdout);
        var terminal = await CliRunner.RunAsync(["plan", file], terminal: true);
        Assert.Contains("\u001b[", terminal.Stdout);
        var noColour = await CliRunner.RunAsync(["plan", file], new Dictionary<string, string> { ["NO_COLOR"] = "1" }, terminal: true);
        Assert.DoesNotContain("\u001b[", noColour.Stdout);
    }

    [Fact]
    public async Task Json_plan_has_format_version_fingerprint_and_one_entry_per_change()
    {
        var file = _dir.Write("json.yaml", _cluster.Manifest("db", "  archiving:\n    mode: \"on\"\n    timeout: 1min"));
        var outFile = Path.Combine(_dir.Path, "plan.json");
        var plan = await CliRunner.RunAsync("plan", "--format", "json", "--out", outFile, file);
        Assert.Equal(2, plan.ExitCode);
        using var json = System.Text.Json.JsonDocument.Parse(plan.Stdout);
        Assert.Equal(2, json.RootElement.GetProperty("formatVersion").GetInt32());
        var hostPlan = json.RootElement.GetProperty("plans")[0];
        Assert.StartsWith("sha256:", hostPlan.GetProperty("fingerprint").GetString());
        var changes = hostPlan.GetProperty("changes").EnumerateArray().ToList();
        Assert.Equal(2, changes.Count);
        var mode = changes.Single(c => c.GetProperty("address").GetString() == "settings.archive_mode");
        Assert.Equal("update", mode.GetProperty("action").GetString());
        Assert.Equal("off", mode.GetProperty("before").GetString());
        Assert.Equal("on", mode.GetProperty("after").GetString());
        Assert.Equal("restart", mode.GetProperty("activation").GetString());
        using var saved = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(outFile));
        Assert.Equal(file, saved.RootElement.GetProperty("manifests")[0].GetProperty("path").GetString());
        Assert.StartsWith("sha256:", saved.RootElement.GetProperty("plans")[0].GetProperty("changes")[0].GetProperty("fingerprint").GetString());
    }
}
