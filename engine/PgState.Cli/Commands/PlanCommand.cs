using System.CommandLine;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Planning;
using PgState.Engine.Rendering;

namespace PgState.Cli.Commands;

/// <summary>pgstate plan: read the live host and print the changes. Exit 0 none, 2 changes, 1 error.</summary>
internal sealed class PlanCommand(IOContext io, HostWorkflow workflow)
{
    public sealed record Arguments(IReadOnlyList<string> Files, OutputFormat Format, string? Out, ConnectionOverride Overrides);

    public Command Build()
    {
        var files = CommonOptions.Files();
        var format = CommonOptions.Format("How to print the plan: text, markdown (for a pull request) or json.", "text", "markdown", "json");
        var output = new Option<string?>("--out") { HelpName = "plan.json", Description = "Also write the plan as JSON to this file (a saved plan for apply)." };
        var host = CommonOptions.PgHost();
        var port = CommonOptions.PgPort();
        var user = CommonOptions.PgUser();
        var command = new Command("plan", "Read the live host and show what apply would change. Exit 0 no changes, 2 changes, 1 error.")
        {
            files, format, output, host, port, user,
        };
        command.SetAction((result, ct) => RunAsync(
            new Arguments(result.GetValue(files)!, Enum.Parse<OutputFormat>(result.GetValue(format)!, ignoreCase: true), result.GetValue(output),
                new ConnectionOverride(result.GetValue(host), result.GetValue(port), result.GetValue(user))), ct));
        return command;
    }

    public async Task<int> RunAsync(Arguments args, CancellationToken cancellationToken)
    {
        var plans = await PlanAllAsync(workflow, args.Files, args.Overrides, cancellationToken);
        if (plans is null)
        {
            return ExitCodes.Error;
        }
        io.Output.Write(PlanRenderer.Render(plans, args.Format, io.Colour));
        Timings.Mark("rendered");
        if (args.Out is not null)
        {
            var manifests = ManifestLoader.Files(args.Files).Select(SavedPlanFormat.Hash).ToList();
            var overrides = new SavedOverrides(args.Overrides.Host, args.Overrides.Port, args.Overrides.User);
            await HostFiles.WriteAtomicAsync(args.Out, PlanRenderer.RenderJson(plans, manifests, overrides), cancellationToken);
            io.Error.WriteLine($"pgstate: plan written to {args.Out}");
        }
        return plans.Any(p => p.HasWork) ? ExitCodes.Changes : ExitCodes.Ok;
    }

    /// <summary>Load, validate, connect and plan every host; null (after printing why) on any error.</summary>
    internal static async Task<IReadOnlyList<HostPlan>?> PlanAllAsync(HostWorkflow workflow, IReadOnlyList<string> files, ConnectionOverride overrides, CancellationToken cancellationToken)
    {
        var hosts = workflow.Load(files, overrides, connectEarly: true);
        if (hosts is null)
        {
            return null;
        }
        var plans = new List<HostPlan>();
        foreach (var host in hosts)
        {
            await using var session = await workflow.ConnectAsync(host, cancellationToken);
            if (await workflow.PlanAsync(host, session, forApply: false, cancellationToken) is not { } plan)
            {
                return null;
            }
            plans.Add(plan);
        }
        return plans;
    }
}
