using System.CommandLine;
using System.Globalization;
using System.Text;
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
    public sealed record Arguments(IReadOnlyList<string> Files, OutputFormat Format, string? Report, string? Metrics, ConnectionOverride Overrides);

    public Command Build()
    {
        var files = CommonOptions.Files();
        var format = CommonOptions.Format("text, markdown or json.", "text", "markdown", "json");
        var report = new Option<string?>("--report") { HelpName = "FILE", Description = "Also write the JSON report to this file." };
        var metrics = new Option<string?>("--metrics") { HelpName = "FILE", Description = "Write Prometheus text exposition (node_exporter textfile collector), atomically." };
        var host = CommonOptions.PgHost();
        var port = CommonOptions.PgPort();
        var user = CommonOptions.PgUser();
        var command = new Command("drift", "Plan for nightly runs: exit 0 in sync, 2 drift, 1 error.") { files, format, report, metrics, host, port, user };
        command.SetAction((r, ct) => RunAsync(new Arguments(r.GetValue(files)!, Enum.Parse<OutputFormat>(r.GetValue(format)!, ignoreCase: true),
            r.GetValue(report), r.GetValue(metrics), new ConnectionOverride(r.GetValue(host), r.GetValue(port), r.GetValue(user))), ct));
        return command;
    }

    public static bool InSync(HostPlan plan) => plan.Changes.Count == 0 && plan.Pending.Count == 0;

    public async Task<int> RunAsync(Arguments args, CancellationToken cancellationToken)
    {
        var hosts = workflow.Load(args.Files, args.Overrides, connectEarly: true);
        if (hosts is null)
        {
            return ExitCodes.Error;
        }
        var plans = new List<(HostPlan Plan, IReadOnlyList<string> Modules)>();
        foreach (var host in hosts)
        {
            await using var session = await workflow.ConnectAsync(host, cancellationToken);
            if (!await workflow.ValidateLiveAsync(host, session, "text", cancellationToken))
            {
                return ExitCodes.Error;
            }
            plans.Add((await PlanEngine.PlanAsync(host.Modules, session, cancellationToken), [.. host.Modules.Select(m => m.Name)]));
        }
        var hostPlans = plans.Select(p => p.Plan).ToList();
        io.Output.Write(PlanRenderer.Render(hostPlans, args.Format, io.Colour));
        if (args.Format == OutputFormat.Text)
        {
            foreach (var p in hostPlans)
            {
                io.Output.WriteLine(InSync(p) ? $"Host \"{p.Host}\" is in sync." : $"Host \"{p.Host}\" has drifted: {p.Changes.Count} change(s), {p.Pending.Count} pending activation(s).");
            }
        }
        if (args.Report is not null)
        {
            await AtomicFile.WriteAsync(args.Report, PlanRenderer.RenderJson(hostPlans), cancellationToken);
        }
        if (args.Metrics is not null)
        {
            await AtomicFile.WriteAsync(args.Metrics, Metrics(plans, DateTimeOffset.UtcNow), cancellationToken);
        }
        return hostPlans.All(InSync) ? ExitCodes.Ok : ExitCodes.Changes;
    }

    /// <summary>Prometheus text exposition format 0.0.4.</summary>
    internal static string Metrics(IReadOnlyList<(HostPlan Plan, IReadOnlyList<string> Modules)> plans, DateTimeOffset now)
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
        sb.Append("# HELP pgstate_check_status Health check status: 0 ok, 1 warn, 2 fail.\n");
        sb.Append("# TYPE pgstate_check_status gauge\n");
        foreach (var (plan, _) in plans)
        {
            var status = InSync(plan) ? (plan.Warnings.Count > 0 ? 1 : 0) : 2;
            sb.Append(CultureInfo.InvariantCulture, $"pgstate_check_status{{host=\"{Label(plan.Host)}\",check=\"desired_state\"}} {status}\n");
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
