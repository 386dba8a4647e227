using System.Text.RegularExpressions;
using Npgsql;
using PgState.Engine.Host;
using PgState.Engine.Planning;
using PgState.Engine.Rendering;
using PgState.Engine.Resources;
using PgState.Tests.Infrastructure;
using PgState.Tests.Snapshots;
using Snapshooter.Xunit;
using YamlDotNet.RepresentationModel;

namespace PgState.Tests.GitOps;

/// <summary>Saved plans, stale-plan refusal, locking, partial failure, drift exit codes, PR markdown, metrics.</summary>
[Collection(SharedClusterB.Name)]
public partial class GitOpsTests(ClusterFixture fixture) : IAsyncLifetime
{
    private readonly ScratchCluster _cluster = fixture.Cluster;
    private readonly TempDir _dir = new();

    public async Task InitializeAsync()
    {
        await fixture.BeginAsync(GetType());
        await _cluster.ResetAsync();
    }

    public Task DisposeAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }

    private string Manifest(string body) => _dir.Write("gitops.yaml", _cluster.Manifest("db", body));

    [Fact]
    public async Task Saved_plan_is_refused_when_the_host_changed_and_applied_when_not()
    {
        var file = Manifest("  settings:\n    archive_timeout: 5min\n    checkpoint_timeout: 10min");
        var planFile = Path.Combine(_dir.Path, "plan.json");
        Assert.Equal(2, (await CliRunner.RunAsync("plan", "--out", planFile, file)).ExitCode);

        await _cluster.ExecAsync("ALTER SYSTEM SET archive_timeout = '1min'");
        await _cluster.ExecAsync("select pg_reload_conf()");
        await Task.Delay(200);
        var refused = await CliRunner.RunAsync("apply", planFile);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("the host changed since the plan was made", refused.Stderr);
        Assert.Contains("settings.archive_timeout (its live state changed)", refused.Stderr);
        Assert.DoesNotContain("settings.checkpoint_timeout", refused.Stderr);
        Assert.Equal("60", await _cluster.ShowAsync("archive_timeout"));
        Assert.Equal("300", await _cluster.ShowAsync("checkpoint_timeout"));

        Assert.Equal(2, (await CliRunner.RunAsync("plan", "--out", planFile, file)).ExitCode);
        var shown = await CliRunner.RunAsync("show", planFile);
        Assert.Contains("~ settings.archive_timeout: \"1min\" -> \"5min\"", shown.Stdout);
        var applied = await CliRunner.RunAsync("apply", planFile);
        Assert.True(applied.ExitCode == 0, applied.ToString());
        Assert.Equal(0, (await CliRunner.RunAsync("plan", file)).ExitCode);

        // An edited manifest makes the saved plan stale too.
        Assert.Equal(0, (await CliRunner.RunAsync("plan", "--out", planFile, file)).ExitCode);
        File.AppendAllText(file, "\n");
        var edited = await CliRunner.RunAsync("apply", planFile);
        Assert.Equal(1, edited.ExitCode);
        Assert.Contains("changed since the plan was made", edited.Stderr);
    }

    [Fact]
    public async Task A_second_apply_fails_fast_naming_the_holder_and_waits_with_lock_timeout()
    {
        var file = Manifest("  settings:\n    archive_timeout: 7min");
        // The lock is the server's (system identifier and data directory), whatever the manifest calls the host.
        var identity = $"{await _cluster.ScalarAsync<long>("select system_identifier from pg_control_system()")}:{_cluster.DataDirectory}";
        await using var holder = await _cluster.OpenAsync();
        await using (var take = new NpgsqlCommand("select pg_advisory_lock($1)", holder) { Parameters = { new() { Value = ApplyLock.KeyFor(identity) } } })
        {
            await take.ExecuteScalarAsync();
        }
        var holderPid = holder.ProcessID;

        var failed = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.Equal(1, failed.ExitCode);
        Assert.Contains($"another pgstate apply is running on this server (host 'db', {identity}): advisory lock held by backend pid {holderPid}", failed.Stderr);
        var otherName = _dir.Write("other-name.yaml", _cluster.Manifest("another-name-same-server", "  settings:\n    archive_timeout: 8min"));
        var alsoFailed = await CliRunner.RunAsync("apply", "--auto-approve", otherName);
        Assert.Equal(1, alsoFailed.ExitCode);
        Assert.Contains("another pgstate apply is running on this server (host 'another-name-same-server'", alsoFailed.Stderr);
        Assert.Equal("0", await _cluster.ShowAsync("archive_timeout"));

        var waiting = CliRunner.RunAsync("apply", "--auto-approve", "--lock-timeout", "20s", file);
        await Task.Delay(700);
        await using (var release = new NpgsqlCommand("select pg_advisory_unlock($1)", holder) { Parameters = { new() { Value = ApplyLock.KeyFor(identity) } } })
        {
            await release.ExecuteScalarAsync();
        }
        var result = await waiting;
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("420", await _cluster.ShowAsync("archive_timeout"));
    }

    [Fact]
    public async Task A_read_only_lock_directory_is_an_error_that_says_so_not_a_busy_lock()
    {
        var file = Manifest("  settings:\n    archive_timeout: 7min");
        var result = await CliRunner.RunAsync(["apply", "--auto-approve", file], new Dictionary<string, string> { ["PGSTATE_LOCK_DIR"] = "/proc/pgstate-lock" });
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("cannot create the apply lock file /proc/pgstate-lock/", result.Stderr);
        Assert.DoesNotContain("another pgstate apply is running", result.Stderr);
        Assert.Equal("0", await _cluster.ShowAsync("archive_timeout"));
    }

    [Fact]
    public async Task Apply_refuses_a_server_whose_data_directory_is_not_the_manifests()
    {
        var file = _dir.Write("other-dir.yaml", _cluster.Manifest("db", "  settings:\n    archive_timeout: 7min").Replace($"dataDirectory: {_cluster.DataDirectory}", "dataDirectory: /var/lib/pgsql/17/data"));
        var plan = await CliRunner.RunAsync("plan", file);
        Assert.Equal(2, plan.ExitCode);
        Assert.Contains("/var/lib/pgsql/17/data is not the server's data directory", plan.Stdout);
        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.Equal(1, apply.ExitCode);
        Assert.Contains("apply refuses to change a server the manifest does not describe", apply.Stderr);
        Assert.Equal("0", await _cluster.ShowAsync("archive_timeout"));
    }

    [Fact]
    public async Task A_server_that_goes_away_mid_apply_gets_a_report_of_what_was_applied()
    {
        var file = Manifest("  settings:\n    archive_timeout: 7min\n    work_mem: 9MB\n  slots:\n    - {name: gone_a}\n");
        var run = PgStateBinary.RunAsync(["apply", "--auto-approve", file],
            new Dictionary<string, string> { ["PGSTATE_TEST_PAUSE_AT"] = "after settings.archive_timeout", ["PGSTATE_TEST_PAUSE_MS"] = "3000" });
        await Task.Delay(1500);
        await _cluster.AsServerUserAsync(Path.Combine(_cluster.BinDirectory, "pg_ctl"), ["-D", _cluster.DataDirectory, "-m", "immediate", "-w", "stop"]);
        var result = await run;
        try
        {
            Assert.Equal(1, result.ExitCode);
            Assert.Contains("Apply failed. Changes applied:", result.StandardOutput);
            Assert.Contains("✓ settings.archive_timeout", result.StandardOutput);
            Assert.Contains("✗ settings.work_mem", result.StandardOutput);
            Assert.Contains("· slots.gone_a", result.StandardOutput);
            Assert.DoesNotContain("internal error", result.StandardError);
        }
        finally
        {
            await _cluster.AsServerUserAsync(Path.Combine(_cluster.BinDirectory, "pg_ctl"),
                ["-D", _cluster.DataDirectory, "-o", $"-k {_cluster.SocketDirectory} -p {_cluster.Port} -c listen_addresses=127.0.0.1 -c fsync=off", "-l", _cluster.LogFile, "-w", "-t", "60", "start"]);
        }
    }

    [Fact]
    public async Task A_change_that_fails_half_way_reports_applied_failed_and_not_attempted()
    {
        var ok = Path.Combine(_dir.Path, "ok-dir");
        var blocker = _dir.Write("a-file", "not a directory");
        var file = Manifest(
            $"  directories:\n    - {{path: {ok}, owner: postgres, mode: \"0700\"}}\n    - {{path: {blocker}/sub, owner: postgres, mode: \"0700\"}}\n" +
            "  settings:\n    archive_timeout: 9min");
        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.Equal(1, apply.ExitCode);
        Assert.Contains("Apply failed. Changes applied:", apply.Stdout);
        Assert.Contains($"✓ directories[\"{ok}\"]", apply.Stdout);
        Assert.Contains($"✗ directories[\"{blocker}/sub\"]:", apply.Stdout);
        Assert.Contains("Not attempted:\n  · settings.archive_timeout", apply.Stdout);

        var after = await CliRunner.RunAsync("plan", file);
        Assert.Contains($"+ directories[\"{blocker}/sub\"]", after.Stdout);
        Assert.Contains("~ settings.archive_timeout", after.Stdout);
        Assert.DoesNotContain($"directories[\"{ok}\"]", after.Stdout);
    }

    [Fact]
    public async Task Drift_exit_codes_0_2_1_report_and_metrics()
    {
        var file = Manifest("  settings:\n    archive_timeout: 3min");
        var report = Path.Combine(_dir.Path, "report.json");
        var metrics = Path.Combine(_dir.Path, "pgstate.prom");

        var drifted = await CliRunner.RunAsync("drift", "--report", report, "--metrics", metrics, file);
        Assert.Equal(2, drifted.ExitCode);
        Assert.Contains("has drifted: 1 change(s)", drifted.Stdout);
        using (var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(report)))
        {
            Assert.Equal(1, json.RootElement.GetProperty("plan").GetProperty("plans")[0].GetProperty("summary").GetProperty("change").GetInt32());
            Assert.Contains(json.RootElement.GetProperty("checks").GetProperty("hosts")[0].GetProperty("checks").EnumerateArray(),
                c => c.GetProperty("id").GetString() == "pg_wal");
        }
        var samples = ParsePrometheus(File.ReadAllText(metrics));
        Assert.Equal(1, samples["pgstate_drift_changes{host=\"db\",module=\"archiving\"}"]);
        Assert.Equal(2, samples["pgstate_check_status{host=\"db\",check=\"desired_state\"}"]);
        Assert.InRange(samples["pgstate_last_run_timestamp_seconds{host=\"db\"}"], DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);

        var applied = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.True(applied.ExitCode == 0, applied.ToString());
        var inSync = await CliRunner.RunAsync("drift", "--metrics", metrics, file);
        Assert.True(inSync.ExitCode == 0, inSync.ToString());
        Assert.Equal(0, ParsePrometheus(File.ReadAllText(metrics))["pgstate_drift_changes{host=\"db\",module=\"archiving\"}"]);

        var broken = await CliRunner.RunAsync("drift", file.Replace("gitops.yaml", "missing.yaml"));
        Assert.Equal(1, broken.ExitCode);
        var unreachable = await CliRunner.RunAsync("drift", _dir.Write("down.yaml", _cluster.Manifest("down", "  settings: {archive_timeout: 1min}").Replace($"port: {_cluster.Port}", "port: 1")));
        Assert.Equal(1, unreachable.ExitCode);
    }

    /// <summary>A small parser of the Prometheus text format: every line a comment or "name{labels} value".</summary>
    private static Dictionary<string, double> ParsePrometheus(string text)
    {
        var samples = new Dictionary<string, double>();
        var types = new HashSet<string>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                Assert.Equal(4, parts.Length);
                Assert.Contains(parts[3], new[] { "gauge", "counter" });
                types.Add(parts[2]);
                continue;
            }
            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                continue;
            }
            var m = Sample().Match(line);
            Assert.True(m.Success, $"not a Prometheus sample line: {line}");
            Assert.Contains(m.Groups["name"].Value, types);
            samples[m.Groups["series"].Value] = double.Parse(m.Groups["value"].Value, System.Globalization.CultureInfo.InvariantCulture);
        }
        Assert.True(text.EndsWith('\n'));
        return samples;
    }

    [GeneratedRegex(@"^(?<series>(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*=""([^""\\]|\\.)*"",?)*\})?) (?<value>-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$")]
    private static partial Regex Sample();

    [Fact]
    public void Large_markdown_plan_is_capped_by_whole_entries()
    {
        var changes = Enumerable.Range(0, 3000).Select(i => new ResourceChange($"hba.rule[{i}]", "hba", ChangeAction.Create, null,
            $"host db{i} app{i} 10.{i / 256}.{i % 256}.0/24 scram-sha-256 (position {i + 1})", Activation.Reload)).ToList();
        changes.Add(new ResourceChange("settings.archive_mode", "archiving", ChangeAction.Update, "off", "on", Activation.Restart));
        changes.Add(new ResourceChange("slots.old", "replication", ChangeAction.Delete, "physical", null, Activation.None));
        var plan = new HostPlan("db1", "postgres@/run/postgresql:5432/postgres", changes, [], [], "sha256:x", Engine.Manifests.RestartPolicy.Never);
        var markdown = PlanRenderer.RenderMarkdown(plan);
        Assert.True(markdown.Length < 65_536, $"{markdown.Length} characters");
        Assert.StartsWith("### pgstate plan for `db1`\n\n**Plan: 3000 to add, 1 to change, 1 to destroy.**", markdown);
        Assert.Contains("> [!CAUTION]\n> This plan **deletes** 1 resource(s): `slots.old`", markdown);
        Assert.Contains("1 change needs a PostgreSQL restart.", markdown);
        var left = Regex.Match(markdown, @"> (\d+) change\(s\) left out");
        Assert.True(left.Success);
        var shown = Regex.Matches(markdown, @"^\| [+~-] \| `", RegexOptions.Multiline).Count;
        Assert.Equal(changes.Count, shown + int.Parse(left.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        Snapshot.Match(markdown.Split('\n').Take(40).Concat(markdown.Split('\n').TakeLast(8)).ToArray());
    }

    [Fact]
    public void Every_gitops_workflow_is_valid_yaml()
    {
        var dir = Path.Combine(ExamplePlanSnapshotTests.RepositoryRoot, "examples", "gitops");
        var files = Directory.GetFiles(dir, "*.yml", SearchOption.AllDirectories)
            .Concat(Directory.GetFiles(dir, "*.yaml", SearchOption.AllDirectories))
            .Concat(Directory.GetFiles(dir, ".gitlab-ci.yml", SearchOption.AllDirectories)).Distinct().ToList();
        Assert.True(files.Count >= 4, string.Join(", ", files));
        foreach (var file in files)
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(File.ReadAllText(file)));
            var root = stream.Documents.Single().RootNode;
            if (Path.GetDirectoryName(file)!.EndsWith("ansible", StringComparison.Ordinal) && root is YamlSequenceNode plays)
            {
                // An Ansible playbook: a list of plays, each naming its hosts and tasks.
                Assert.All(plays.Children, p => Assert.Contains("hosts", Assert.IsType<YamlMappingNode>(p).Children.Keys.Select(k => k.ToString())));
                continue;
            }
            Assert.True(Assert.IsType<YamlMappingNode>(root).Children.Count > 0, file);
        }
        // The drift timer and service ship in the packages (packaging/systemd).
        foreach (var unit in Directory.GetFiles(Path.Combine(dir, "..", "..", "packaging", "systemd")))
        {
            Assert.Matches(unit.EndsWith(".timer", StringComparison.Ordinal) ? @"\[Timer\][\s\S]*OnCalendar=" : @"\[Service\][\s\S]*ExecStart=/usr/bin/pgstate drift", File.ReadAllText(unit));
        }
    }
}
