using System.CommandLine;
using PgState.Engine.Planning;
using PgState.Engine.Rendering;
using PgState.Engine.Resources;

namespace PgState.Cli.Commands;

/// <summary>pgstate apply: plan, confirm, make the host match, then re-read it. Exit 0 done, 1 error.</summary>
internal sealed class ApplyCommand(IOContext io, HostWorkflow workflow)
{
    public sealed record Arguments(IReadOnlyList<string> Files, bool AutoApprove, ConnectionOverride Overrides, bool AllowLockout = false);

    public Command Build()
    {
        var files = CommonOptions.Files();
        var autoApprove = new Option<bool>("--auto-approve") { Description = "Apply without asking for 'yes' (needed when there is no terminal)." };
        var allowLockout = new Option<bool>("--allow-lockout") { Description = "Apply a pg_hba.conf after which no rule would let pgstate's own connection in." };
        var host = CommonOptions.PgHost();
        var port = CommonOptions.PgPort();
        var user = CommonOptions.PgUser();
        var command = new Command("apply", "Make the host match the manifests. Shows the plan and asks for 'yes' on a terminal. Exit 0 done, 1 error.")
        {
            files, autoApprove, allowLockout, host, port, user,
        };
        command.SetAction((result, ct) => RunAsync(
            new Arguments(result.GetValue(files)!, result.GetValue(autoApprove),
                new ConnectionOverride(result.GetValue(host), result.GetValue(port), result.GetValue(user)), result.GetValue(allowLockout)), ct));
        return command;
    }

    public async Task<int> RunAsync(Arguments args, CancellationToken cancellationToken)
    {
        if (args.Files.Count == 1 && args.Files[0].EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            io.Error.WriteLine("pgstate: error: applying a saved plan file is not supported by this version; apply the manifests");
            return ExitCodes.Error;
        }
        var hosts = workflow.Load(args.Files, args.Overrides, connectEarly: true);
        if (hosts is null)
        {
            return ExitCodes.Error;
        }
        var exit = ExitCodes.Ok;
        foreach (var host in hosts)
        {
            await using var session = await workflow.ConnectAsync(host, cancellationToken);
            session.Allowances = args.AllowLockout ? new HashSet<string> { "lockout" } : new HashSet<string>();
            if (!await workflow.ValidateLiveAsync(host, session, "text", cancellationToken))
            {
                return ExitCodes.Error;
            }
            var plan = await PlanEngine.PlanAsync(host.Modules, session, cancellationToken);
            io.Output.Write(PlanRenderer.RenderText(plan, io.Colour));
            if (!plan.HasWork)
            {
                io.Output.WriteLine($"Nothing to apply for host \"{plan.Host}\".");
                continue;
            }
            if (!Confirm(args.AutoApprove, plan.Host))
            {
                return ExitCodes.Error;
            }
            var result = await PlanEngine.ApplyAsync(host.Modules, session, plan, m => io.Error.WriteLine("pgstate: " + m), cancellationToken);
            Report(result);
            if (!result.Succeeded)
            {
                exit = ExitCodes.Error;
                break;
            }
        }
        return exit;
    }

    private bool Confirm(bool autoApprove, string host)
    {
        if (autoApprove)
        {
            return true;
        }
        if (!io.InputIsTerminal)
        {
            io.Error.WriteLine("pgstate: error: refusing to apply without confirmation: there is no terminal to ask on. Review the plan and pass --auto-approve.");
            return false;
        }
        io.Error.Write($"\nDo you want to apply these changes to host \"{host}\"? Only 'yes' will be accepted: ");
        var answer = io.Input.ReadLine();
        if (answer?.Trim() != "yes")
        {
            io.Error.WriteLine("Apply cancelled.");
            return false;
        }
        return true;
    }

    private void Report(ApplyResult result)
    {
        var o = io.Output;
        var added = result.Applied.Count(c => c.Action is ChangeAction.Create or ChangeAction.Replace);
        var changed = result.Applied.Count(c => c.Action == ChangeAction.Update);
        var destroyed = result.Applied.Count(c => c.Action is ChangeAction.Delete or ChangeAction.Replace);
        o.WriteLine();
        if (result.Failed is { } failed)
        {
            o.WriteLine("Apply failed. Changes applied:");
            foreach (var c in result.Applied)
            {
                o.WriteLine($"  ✓ {c.Address}");
            }
            if (result.Applied.Count == 0)
            {
                o.WriteLine("  (none)");
            }
            o.WriteLine($"Failed:\n  ✗ {failed.Change.Address}: {failed.Error}");
            if (result.NotAttempted.Count > 0)
            {
                o.WriteLine("Not attempted:");
                foreach (var c in result.NotAttempted)
                {
                    o.WriteLine($"  · {c.Address}");
                }
            }
            o.WriteLine("Run pgstate plan to see what is left.");
            return;
        }
        o.WriteLine($"Apply complete! Resources: {added} added, {changed} changed, {destroyed} destroyed.");
        if (result.Restarted)
        {
            o.WriteLine("PostgreSQL was restarted to activate restart-only settings.");
        }
        foreach (var p in result.After.Pending)
        {
            o.WriteLine($"Pending: {p.Address} = \"{p.Value}\": {(p.Needs == Activation.Restart ? "restart" : "reload")} pending — {p.Note}");
        }
    }
}
