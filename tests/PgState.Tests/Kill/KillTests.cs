using System.Diagnostics;
using PgState.Engine.Host;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Kill;

/// <summary>
/// An apply killed at many instructions (SIGKILL: nothing runs after it; SIGTERM: pgstate stops
/// between changes and reports) of an hba + settings + slots apply, using the test-only pause
/// (PGSTATE_TEST_PAUSE_AT). After each kill: pg_hba.conf is a file the server accepts (the server
/// restarts), the next run converges, and no temporary, journal or kept file is left behind.
/// </summary>
public sealed class KillTests(ClusterFixture fixture) : IClassFixture<ClusterFixture>, IDisposable
{
    private readonly ScratchCluster _cluster = fixture.Cluster;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Manifest(bool rejectedRule) => _dir.Write("kill.yaml", _cluster.Manifest("db",
        "  settings:\n    archive_timeout: 7min\n    work_mem: 8MB\n" +
        "  slots:\n    - {name: kill_a}\n    - {name: kill_b}\n" +
        "  hba:\n    rules:\n" +
        "      - {type: local, database: all, user: all, method: trust}\n" +
        "      - {type: host, database: all, user: all, address: 127.0.0.1/32, method: trust}\n" +
        "      - {type: host, database: app, user: app, address: 10.0.0.0/8, method: scram-sha-256}\n" +
                // A rule pgstate's own checks accept and the server rejects (an ldap option on an md5 rule).
        (rejectedRule ? "      - {type: host, database: all, user: all, address: 10.1.0.0/16, method: md5, options: {ldapserver: ldap.example.com}}\n" : "")));

    public static TheoryData<string, string, bool> Matrix()
    {
        var data = new TheoryData<string, string, bool>();
        string[] points = ["before settings.archive_timeout", "after settings.work_mem", "before slots.kill_a", "after slots.kill_a",
            "before hba.rule[2]", "hba previous kept", "hba journal written", "hba candidate in place", "verify hba", "hba verify"];
        foreach (var signal in new[] { "KILL", "TERM" })
        {
            foreach (var point in points)
            {
                data.Add(signal, point, false);
            }
            // A candidate the server rejects, killed while it sits at hba_file.
            foreach (var point in new[] { "hba candidate in place", "hba verify" })
            {
                data.Add(signal, point, true);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task A_killed_apply_leaves_a_server_that_restarts_and_a_next_run_that_converges(string signal, string point, bool rejectedRule)
    {
        await ResetAsync();
        var file = Manifest(rejectedRule);
        var (exit, stdout, stderr) = await RunUntilPauseThenSignalAsync(["apply", "--auto-approve", file], point, signal);
        var killed = $"{signal} at \"{point}\"{(rejectedRule ? " (rejected rule)" : "")}: exit {exit}\n{stdout}\n{stderr}";
        Assert.True(stderr.Contains($"test pause at {point}", StringComparison.Ordinal), killed);
        Assert.DoesNotContain("Unhandled exception", stderr);
        Assert.DoesNotContain("internal error", stderr);
        if (signal == "TERM")
        {
            // A clean stop: exit 1 and a report of what was applied and what was not.
            Assert.True(exit == 1, killed);
            Assert.Contains("SIGTERM received", stderr);
            Assert.True(stdout.Contains("Apply interrupted", StringComparison.Ordinal) || stdout.Contains("Apply failed", StringComparison.Ordinal), killed);
        }

        // The next run of pgstate (any command; here the one a service's ExecStartPre would run) puts
        // back the previous pg_hba.conf if a candidate the server had not accepted was left in place.
        var recover = await PgStateBinary.RunAsync(["hba", "recover", "--file", _cluster.HbaPath()]);
        Assert.True(recover.ExitCode == 0, killed + "\n--- recover\n" + recover.StandardOutput + recover.StandardError);
        Assert.False(File.Exists(Path.Combine(_cluster.DataDirectory, ".pg_hba.conf.pgstate-journal")), killed);

        // Then the server restarts: pg_hba.conf is a file it accepts.
        await _cluster.RestartAsync();

        // The next apply converges; then the plan is empty.
        var next = await PgStateBinary.RunAsync(["apply", "--auto-approve", Manifest(false)]);
        Assert.True(next.ExitCode == 0, killed + "\n--- next run\n" + next.StandardOutput + next.StandardError);
        var plan = await PgStateBinary.RunAsync(["plan", Manifest(false)]);
        Assert.True(plan.ExitCode == 0, killed + "\n--- plan\n" + plan.StandardOutput + plan.StandardError);
        var strays = Directory.GetFiles(_cluster.DataDirectory, ".*pgstate*").Concat(Directory.GetFiles(CliRunner.HostRoot, "*.tmp", SearchOption.AllDirectories)).ToList();
        Assert.True(strays.Count == 0, killed + "\nleft behind: " + string.Join(", ", strays));
        await _cluster.RestartAsync();
    }

    public static TheoryData<string, string, bool, string> NextRuns() => new()
    {
        // A candidate the server rejects, left at hba_file by a kill: whatever runs next puts the previous file back first.
        { "KILL", "hba candidate in place", true, "plan" },
        { "KILL", "hba verify", true, "drift" },
        { "KILL", "hba journal written", false, "apply" },
        { "INT", "hba candidate in place", true, "plan" },
    };

    /// <summary>No `hba recover` in between: plan, drift and apply recover what a killed apply left before anything else.</summary>
    [Theory]
    [MemberData(nameof(NextRuns))]
    public async Task The_next_plan_drift_or_apply_recovers_a_killed_apply_first(string signal, string point, bool rejectedRule, string next)
    {
        await ResetAsync();
        var before = File.ReadAllBytes(_cluster.HbaPath());
        var file = Manifest(rejectedRule);
        var (exit, stdout, stderr) = await RunUntilPauseThenSignalAsync(["apply", "--auto-approve", file], point, signal);
        var killed = $"{signal} at \"{point}\": exit {exit}\n{stdout}\n{stderr}";
        Assert.True(stderr.Contains($"test pause at {point}", StringComparison.Ordinal), killed);
        Assert.DoesNotContain("Unhandled exception", stderr);
        var journal = Path.Combine(_cluster.DataDirectory, ".pg_hba.conf.pgstate-journal");

        var run = await PgStateBinary.RunAsync(next == "apply" ? ["apply", "--auto-approve", Manifest(false)] : [next, Manifest(false)]);
        var after = killed + $"\n--- {next}\n" + run.StandardOutput + run.StandardError;
        Assert.DoesNotContain("internal error", run.StandardError);
        Assert.False(File.Exists(journal), after);
        if (rejectedRule && signal == "KILL")
        {
            // The candidate the server had not accepted is gone: the file is the one from before the apply.
            Assert.Contains("recovered: put the previous pg_hba.conf back", run.StandardError);
            Assert.Equal(before, File.ReadAllBytes(_cluster.HbaPath()));
        }
        await _cluster.RestartAsync();
        var converge = await PgStateBinary.RunAsync(["apply", "--auto-approve", Manifest(false)]);
        Assert.True(converge.ExitCode == 0, after + "\n--- apply\n" + converge.StandardOutput + converge.StandardError);
        Assert.Equal(0, (await PgStateBinary.RunAsync(["plan", Manifest(false)])).ExitCode);
        Assert.Empty(Directory.GetFiles(_cluster.DataDirectory, ".*pgstate*"));
        await _cluster.RestartAsync();
    }

    private Task ResetAsync() => _cluster.ResetAllAsync();

    /// <summary>Runs the binary until it prints "test pause at POINT", sends the signal, and collects what it printed.</summary>
    private static async Task<(int Exit, string Stdout, string Stderr)> RunUntilPauseThenSignalAsync(string[] args, string point, string signal)
    {
        var info = new ProcessStartInfo(PgStateBinary.Path, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (k, v) in CliRunner.HostEnvironment)
        {
            info.Environment[k] = v;
        }
        info.Environment["PGSTATE_TEST_PAUSE_AT"] = point;
        info.Environment["PGSTATE_TEST_PAUSE_MS"] = "4000";
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = new System.Text.StringBuilder();
        var paused = new TaskCompletionSource();
        var readErr = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync() is { } line)
            {
                lock (stderr)
                {
                    stderr.AppendLine(line);
                }
                if (line.Contains($"test pause at {point}", StringComparison.Ordinal))
                {
                    paused.TrySetResult();
                }
            }
            paused.TrySetResult();
        });
        await paused.Task.WaitAsync(TimeSpan.FromSeconds(60));
        if (!process.HasExited)
        {
            await ProcessRunner.Default.RunAsync("kill", ["-" + signal, process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], check: false);
        }
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        await readErr;
        return (process.ExitCode, await stdout, stderr.ToString());
    }
}
