using System.Text.Json;
using System.Text.RegularExpressions;
using PgState.Engine.Manifests;
using PgState.Engine.Planning;
using PgState.Engine.Rendering;
using PgState.Engine.Resources;
using PgState.Tests.Infrastructure;
using Snapshooter.Xunit;

namespace PgState.Tests.Fleet;

/// <summary>Several hosts' plans as one review: table per host, details per host, the GitHub size cap, JSON totals, pgstate show.</summary>
[Collection(SharedClusterA.Name)]
public class FleetRendererTests(ClusterFixture fixture) : IAsyncLifetime
{
    public Task InitializeAsync() => fixture.BeginAsync(GetType());

    public Task DisposeAsync() => Task.CompletedTask;

    private static HostPlan Plan(string host, IEnumerable<ResourceChange> changes, IEnumerable<PlanWarning>? warnings = null, RestartPolicy policy = RestartPolicy.Never) =>
        new(host, $"postgres@/run/postgresql:5432/postgres", [.. changes], [], [.. warnings ?? []], "sha256:x", policy);

    private static IReadOnlyList<HostPlan> ThreeHosts() =>
    [
        Plan("db1", [
            new ResourceChange("settings.archive_mode", "archiving", ChangeAction.Update, "off", "on", Activation.Restart),
            new ResourceChange("settings.archive_timeout", "archiving", ChangeAction.Update, "0", "5min", Activation.Reload),
        ]),
        Plan("db2", [
            new ResourceChange("hba.rule[1]", "hba", ChangeAction.Create, null, "host orders app 10.0.1.0/24 reject (position 2)", Activation.Reload),
            new ResourceChange("slots.old", "replication", ChangeAction.Delete, "physical", null, Activation.None),
        ], [new PlanWarning("hba.rule[1]", "hba", "live sessions: 2 sessions of app@10.0.1.5 → orders would be rejected by hba.rule[1] (host orders app 10.0.1.0/24 reject); today line 3 (host all all 10.0.0.0/8 scram-sha-256) admits them; apply refuses unless --allow-lockout")]),
        Plan("db3", []),
    ];

    [Fact]
    public void Fleet_markdown_of_three_hosts_matches_its_baseline()
    {
        var markdown = FleetRenderer.RenderMarkdown(ThreeHosts());
        Assert.StartsWith("### pgstate plan for 3 hosts\n\n**Fleet: 2 of 3 host(s) with changes — 1 to add, 2 to change, 1 to destroy.**", markdown);
        Assert.Contains("| `db2` | 1 | 0 | 1 | 0 | 1 | changes |", markdown);
        Assert.Contains("| `db3` | 0 | 0 | 0 | 0 | 0 | in sync |", markdown);
        Assert.Contains("2 sessions of app@10.0.1.5 → orders would be rejected by hba.rule[1]", markdown);
        Assert.DoesNotContain("<b>db3</b>", markdown); // in sync: a table row, no details block
        Snapshot.Match(markdown.Split('\n'));
    }

    [Fact]
    public void Fleet_markdown_is_capped_under_the_limit_and_keeps_every_host_and_warning()
    {
        var plans = Enumerable.Range(1, 12).Select(h => Plan($"db{h:00}",
            Enumerable.Range(0, 800).Select(i => new ResourceChange($"hba.rule[{i}]", "hba", ChangeAction.Create, null,
                $"host db{i} app{i} 10.{h}.{i % 256}.0/24 scram-sha-256 (position {i + 1})", Activation.Reload)),
            [new PlanWarning(null, "hba", $"warning of db{h:00}")])).ToList();
        plans.Add(Plan("small", [new ResourceChange("settings.work_mem", "archiving", ChangeAction.Update, "4MB", "8MB", Activation.Reload)]));
        var markdown = FleetRenderer.RenderMarkdown(plans);
        Assert.True(markdown.Length < 65_536, $"{markdown.Length} characters");
        foreach (var p in plans)
        {
            Assert.Contains($"| `{p.Host}` |", markdown);
            Assert.Contains($"<b>{p.Host}</b>", markdown);
        }
        for (var h = 1; h <= 12; h++)
        {
            Assert.Contains($"warning of db{h:00}", markdown);
        }
        // The small host is shown whole; the large ones say how much they left out, and it adds up.
        Assert.Contains("| ~ | `settings.work_mem` |", markdown);
        var leftOut = Regex.Matches(markdown, @"> (\d+) change\(s\) left out").Sum(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        var shown = Regex.Matches(markdown, @"^\| [+~-] \| `", RegexOptions.Multiline).Count;
        Assert.Equal(plans.Sum(p => p.Changes.Count), shown + leftOut);
        Assert.True(leftOut > 0);
    }

    [Fact]
    public void Fleet_json_has_totals_and_every_plan()
    {
        using var json = JsonDocument.Parse(FleetRenderer.Render(ThreeHosts(), OutputFormat.Json));
        var fleet = json.RootElement.GetProperty("fleet");
        Assert.Equal(3, fleet.GetProperty("hosts").GetInt32());
        Assert.Equal(2, fleet.GetProperty("hostsWithWork").GetInt32());
        Assert.Equal(1, fleet.GetProperty("destroy").GetInt32());
        Assert.Equal(1, fleet.GetProperty("needRestart").GetInt32());
        Assert.Equal(1, fleet.GetProperty("warnings").GetInt32());
        Assert.Equal(["db1", "db2", "db3"], json.RootElement.GetProperty("plans").EnumerateArray().Select(p => p.GetProperty("host").GetString()));
    }

    [Fact]
    public async Task Show_merges_saved_plans_of_several_hosts_into_one_comment()
    {
        using var dir = new TempDir();
        var cluster = fixture.Cluster;
        var a = dir.Write("a.yaml", cluster.Manifest("alpha", "  settings:\n    archive_timeout: 11min"));
        var b = dir.Write("b.yaml", cluster.Manifest("beta", "  settings:\n    archive_timeout: \"0\""));
        Assert.Equal(2, (await CliRunner.RunAsync("plan", "--out", Path.Combine(dir.Path, "alpha.json"), a)).ExitCode);
        Assert.Equal(0, (await CliRunner.RunAsync("plan", "--out", Path.Combine(dir.Path, "beta.json"), b)).ExitCode);

        var markdown = await CliRunner.RunAsync("show", "--format", "markdown", Path.Combine(dir.Path, "alpha.json"), Path.Combine(dir.Path, "beta.json"));
        Assert.True(markdown.ExitCode == 0, markdown.ToString());
        Assert.StartsWith("### pgstate plan for 2 hosts", markdown.Stdout);
        Assert.Contains("| `alpha` | 0 | 1 | 0 | 0 | 0 | changes |", markdown.Stdout);
        Assert.Contains("| `beta` | 0 | 0 | 0 | 0 | 0 | in sync |", markdown.Stdout);
        Assert.Contains("`settings.archive_timeout`", markdown.Stdout);

        var text = await CliRunner.RunAsync("show", Path.Combine(dir.Path, "alpha.json"), Path.Combine(dir.Path, "beta.json"));
        Assert.Contains("Fleet: 1 of 2 host(s) with changes — 0 to add, 1 to change, 0 to destroy.", text.Stdout);
        Assert.Contains("pgstate plan for host \"alpha\"", text.Stdout);

        // One host's plan is still shown as before.
        var single = await CliRunner.RunAsync("show", "--format", "markdown", Path.Combine(dir.Path, "alpha.json"));
        Assert.StartsWith("### pgstate plan for `alpha`", single.Stdout);
    }
}
