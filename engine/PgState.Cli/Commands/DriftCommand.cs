using System.CommandLine;
using System.Globalization;
using System.Text;
using PgState.Engine.Host;
using PgState.Engine.Planning;
using PgState.Engine.Rendering;
using PgState.Engine.Resources;

namespace PgState.Cli.Commands;

/// <summary>
/// pgstate drift: the nightly question "does the host still match, and is it healthy?".
/// Exit 0 in sync, 2 drift (changes or values pending activation), 1 error.
/// </summary>
internal sealed class DriftCommand(IOContext io, HostWorkflow workflow)
{
    public sealed record Arguments(IReadOnlyList<string> Files, OutputFormat Format, string? Report, string? Metrics, ConnectionOverride Overrides,
        CheckOptions? Checks = null, bool Strict = false);

    public Command Build()
    {
        var files = CommonOptions.Files();
        var format = CommonOptions.Format("text, markdown or json.", "text", "markdown", "json");
        var report = new Option<string?>("--report") { HelpName = "FILE", Description = "Also write the JSON report to this file." };
        var metrics = new Option<string?>("--metrics") { HelpName = "FILE", Description = "Write Prometheus text exposition (node_exporter textfile collector), atomically." };
        var strict = new Option<bool>("--strict") { Description = "Count check warnings as unhealthy." };
        var probe = CheckCommand.ProbeOption();
        var probeTimeout = CheckCommand.ProbeTimeoutOption();
        var host = CommonOptions.PgHost();
        var port = CommonOptions.PgPort();
        var user = CommonOptions.PgUser();
        var command = new Command("drift", "Plan + health checks for nightly runs: exit 0 in sync and healthy, 2 drift or unhealthy, 1 error.")
        {
            files, format, report, metrics, strict, probe, probeTimeout, host, port, user,
        };
        command.SetAction((r, ct) => CheckCommand.Options(io, r.GetValue(probe), r.GetValue(probeTimeout)!) is { } options
            ? RunAsync(new Arguments(r.GetValue(files)!, Enum.Parse<OutputFormat>(r.GetValue(format)!, ignoreCase: true),
                r.GetValue(report), r.GetValue(metrics), new ConnectionOverride(r.GetValue(host), r.GetValue(port), r.GetValue(user)), options, r.GetValue(strict)), ct)
            : Task.FromResult(ExitCodes.Error));
        return command;
    }

    public static bool InSync(HostPlan plan) => plan.Changes.Count == 0 && plan.Pending.Count == 0;

    public async Task<int> RunAsync(Arguments args, CancellationToken cancellationToken)
    {
        // Nightly runs have no CI secrets: modules read what they can (pgstate's credentials store) and say what they could not compare.
        var hosts = workflow.Load(args.Files, args.Overrides, connectEarly: true, secrets: SecretCheck.Skip);
        if (hosts is null)
        {
            return ExitCodes.Error;
        }
        var plans = new List<(HostPlan Plan, IReadOnlyList<string> Modules)>();
        var checks = new List<(string Host, IReadOnlyList<CheckResult> Checks)>();
        foreach (var host in hosts)
        {
            await using var session = await workflow.ConnectAsync(host, cancellationToken);
            if (await workflow.PlanAsync(host, session, forApply: false, cancellationToken) is not { } plan)
            {
                return ExitCodes.Error;
            }
            plans.Add((plan, [.. host.Resources.Select(m => m.Name)]));
            checks.Add((host.Host.Name, await PlanEngine.CheckAsync(host, session, args.Checks ?? new CheckOptions(false, TimeSpan.FromSeconds(30)), cancellationToken)));
        }
        var hostPlans = plans.Select(p => p.Plan).ToList();
        if (args.Format == OutputFormat.Json)
        {
            io.Output.Write(Report(hostPlans, checks));
        }
        else
        {
            io.Output.Write(PlanRenderer.Render(hostPlans, args.Format, io.Colour));
            io.Output.Write("\n" + CheckRenderer.Render(checks, args.Format));
        }
        if (args.Format == OutputFormat.Text)
        {
            foreach (var p in hostPlans)
            {
                io.Output.WriteLine(InSync(p) ? $"Host \"{p.Host}\" is in sync." : $"Host \"{p.Host}\" has drifted: {p.Changes.Count} change(s), {p.Pending.Count} pending activation(s).");
            }
        }
        if (args.Report is not null)
        {
            await HostFiles.WriteAtomicAsync(args.Report, Report(hostPlans, checks), cancellationToken);
        }
        if (args.Metrics is not null)
        {
            await HostFiles.WriteAtomicAsync(args.Metrics, Metrics(plans, checks, DateTimeOffset.UtcNow), cancellationToken);
        }
        var healthy = !checks.Any(c => CheckCommand.Failed(c.Checks, args.Strict));
        return hostPlans.All(InSync) && healthy ? ExitCodes.Ok : ExitCodes.Changes;
    }

    /// <summary>The JSON report: the plan and the checks, one versioned document.</summary>
    private static string Report(IReadOnlyList<HostPlan> plans, IReadOnlyList<(string Host, IReadOnlyList<CheckResult> Checks)> checks)
    {
        var report = new System.Text.Json.Nodes.JsonObject
        {
            ["formatVersion"] = 1,
            ["generatedAt"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            ["plan"] = System.Text.Json.Nodes.JsonNode.Parse(PlanRenderer.RenderJson(plans)),
            ["checks"] = System.Text.Json.Nodes.JsonNode.Parse(CheckRenderer.Render(checks, OutputFormat.Json)),
        };
        return report.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    /// <summary>Prometheus text exposition format 0.0.4.</summary>
    internal static string Metrics(IReadOnlyList<(HostPlan Plan, IReadOnlyList<string> Modules)> plans, IReadOnlyList<(string Host, IReadOnlyList<CheckResult> Checks)> checks, DateTimeOffset now)
    {
        static string Label(string v) => v.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
        var sb = new StringBuilder();
        sb.Append("# HELP pgstate_drift_changes Changes (and values pending activation) pgstate would make, per module; 0 is in sync.\n");
        sb.Append("# TYPE pgstate_drift_changes gauge\n");
        foreach (var (plan, modules) in plans)
        {
            foreach (var module in modules.Concat(plan.Changes.Select(c => c.Module)).Distinct().Order(StringComparer.Ordinal))
            {
                var n = plan.Changes.Count(c => c.Module == module) + plan.Pending.Count(p => p.Module == module);
                sb.Append(CultureInfo.InvariantCulture, $"pgstate_drift_changes{{host=\"{Label(plan.Host)}\",module=\"{Label(module)}\"}} {n}\n");
            }
        }
        sb.Append("# HELP pgstate_check_status Health check status: 0 ok, 1 warn, 2 fail, -1 skipped (not run here; see the report for why).\n");
        sb.Append("# TYPE pgstate_check_status gauge\n");
        foreach (var (plan, _) in plans)
        {
            var status = InSync(plan) ? (plan.Warnings.Count > 0 ? 1 : 0) : 2;
            sb.Append(CultureInfo.InvariantCulture, $"pgstate_check_status{{host=\"{Label(plan.Host)}\",check=\"desired_state\"}} {status}\n");
        }
        foreach (var (host, results) in checks)
        {
            foreach (var c in results)
            {
                var value = c.Status switch { CheckStatus.Fail => 2, CheckStatus.Warn => 1, CheckStatus.Skipped => -1, _ => 0 };
                sb.Append(CultureInfo.InvariantCulture, $"pgstate_check_status{{host=\"{Label(host)}\",check=\"{Label(c.Id)}\"}} {value}\n");
            }
        }
        var measured = checks.SelectMany(h => h.Checks.Where(c => c.Metrics is not null).SelectMany(c => c.Metrics!.Select(m => (h.Host, c.Id, Name: m.Key, m.Value)))).ToList();
        foreach (var group in measured.GroupBy(m => m.Name).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            sb.Append(CultureInfo.InvariantCulture, $"# HELP pgstate_check_{group.Key} Measured by a health check (see the check id).\n");
            sb.Append(CultureInfo.InvariantCulture, $"# TYPE pgstate_check_{group.Key} gauge\n");
            foreach (var m in group)
            {
                sb.Append(CultureInfo.InvariantCulture, $"pgstate_check_{group.Key}{{host=\"{Label(m.Host)}\",check=\"{Label(m.Id)}\"}} {m.Value.ToString("R", CultureInfo.InvariantCulture)}\n");
            }
        }
        sb.Append("# HELP pgstate_last_run_timestamp_seconds When pgstate drift last ran.\n");
        sb.Append("# TYPE pgstate_last_run_timestamp_seconds gauge\n");
        foreach (var (plan, _) in plans)
        {
            sb.Append(CultureInfo.InvariantCulture, $"pgstate_last_run_timestamp_seconds{{host=\"{Label(plan.Host)}\"}} {now.ToUnixTimeSeconds()}\n");
        }
        return sb.ToString();
    }
}
