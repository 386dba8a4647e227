using System.CommandLine;
using PgState.Engine.Host;
using PgState.Engine.Planning;
using PgState.Engine.Diagnostics;
using PgState.Engine.Rendering;
using PgState.Engine.Resources;

namespace PgState.Cli.Commands;

/// <summary>pgstate apply: plan, confirm, make the host match, then re-read it. Exit 0 done, 1 error.</summary>
internal sealed class ApplyCommand(IOContext io, HostWorkflow workflow)
{
    public sealed record Arguments(IReadOnlyList<string> Files, bool AutoApprove, ConnectionOverride Overrides, bool AllowLockout = false, TimeSpan LockTimeout = default);

    public Command Build()
    {
        var files = CommonOptions.Files();
        var autoApprove = new Option<bool>("--auto-approve") { Description = "Apply without asking for 'yes' (needed when there is no terminal)." };
        var lockTimeout = new Option<string>("--lock-timeout") { HelpName = "DURATION", Description = "Wait this long for another apply on the same host to finish (e.g. 30s, 5min). Default: fail at once.", DefaultValueFactory = _ => "0s" };
        var allowLockout = new Option<bool>("--allow-lockout") { Description = "Apply a pg_hba.conf after which no rule would let pgstate's own connection in." };
        var host = CommonOptions.PgHost();
        var port = CommonOptions.PgPort();
        var user = CommonOptions.PgUser();
        var command = new Command("apply", "Make the host match the manifests. Shows the plan and asks for 'yes' on a terminal. Exit 0 done, 1 error.")
        {
            files, autoApprove, allowLockout, lockTimeout, host, port, user,
        };
        command.SetAction((result, ct) => RunAsync(
            new Arguments(result.GetValue(files)!, result.GetValue(autoApprove),
                new ConnectionOverride(result.GetValue(host), result.GetValue(port), result.GetValue(user)), result.GetValue(allowLockout), Engine.Manifests.Durations.Parse(result.GetValue(lockTimeout)!)), ct));
        return command;
    }

    public async Task<int> RunAsync(Arguments args, CancellationToken cancellationToken)
    {
        SavedPlan? saved = null;
        var files = args.Files;
        var overrides = args.Overrides;
        if (args.Files.Count == 1 && args.Files[0].EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            saved = SavedPlanFormat.Read(args.Files[0]);
            foreach (var m in saved.Manifests)
            {
                if (!File.Exists(m.Path) || SavedPlanFormat.Hash(m.Path).Sha256 != m.Sha256)
                {
                    io.Error.WriteLine($"pgstate: error: refusing to apply {args.Files[0]}: manifest {m.Path} changed since the plan was made; run pgstate plan again");
                    return ExitCodes.Error;
                }
            }
            if (saved.Manifests.Count == 0)
            {
                io.Error.WriteLine($"pgstate: error: {args.Files[0]} names no manifests: write saved plans with pgstate plan --out");
                return ExitCodes.Error;
            }
            files = [.. saved.Manifests.Select(m => m.Path)];
            overrides = new ConnectionOverride(saved.Overrides.Host, saved.Overrides.Port, saved.Overrides.User);
        }
        var hosts = workflow.Load(files, overrides, connectEarly: true);
        if (hosts is null)
        {
            return ExitCodes.Error;
        }
        var exit = ExitCodes.Ok;
        foreach (var host in hosts)
        {
            await using var session = await workflow.ConnectAsync(host, cancellationToken);
            session.Allowances = args.AllowLockout ? new HashSet<string> { "lockout" } : new HashSet<string>();
            await using var hostLock = await ApplyLock.AcquireAsync(session, args.LockTimeout, cancellationToken);
            if (!await workflow.ValidateLiveAsync(host, session, "text", cancellationToken))
            {
                return ExitCodes.Error;
            }
            var plan = await PlanEngine.PlanAsync(host.Modules, session, cancellationToken);
            if (saved is not null)
            {
                // A saved plan is applied only if the host is still exactly as it was planned: never re-plan silently.
                var savedHost = saved.Plans.FirstOrDefault(p => p.Host == plan.Host);
                var stale = savedHost is null ? ["the saved plan has no entry for this host"] : SavedPlanFormat.StaleResources(savedHost, plan);
                if (stale.Count > 0)
                {
                    io.Error.WriteLine($"pgstate: error: refusing to apply {args.Files[0]} to host \"{plan.Host}\": the host changed since the plan was made:");
                    foreach (var s in stale)
                    {
                        io.Error.WriteLine($"  - {s}");
                    }
                    io.Error.WriteLine("Run pgstate plan again and review the new plan.");
                    return ExitCodes.Error;
                }
            }
            io.Output.Write(PlanRenderer.RenderText(plan, io.Colour));
            if (!plan.HasWork)
            {
                io.Output.WriteLine($"Nothing to apply for host \"{plan.Host}\".");
                continue;
            }
            if (saved is null && !Confirm(args.AutoApprove, plan.Host))
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
