using System.CommandLine;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Planning;
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
        var lockTimeout = new Option<string>("--lock-timeout") { HelpName = "DURATION", Description = "Wait this long for another apply on the same server to finish (e.g. 30s, 5min). Default: fail at once.", DefaultValueFactory = _ => "0s" };
        var allowLockout = new Option<bool>("--allow-lockout") { Description = "Apply a pg_hba.conf after which no rule would let pgstate's own connection (or live sessions) in." };
        var host = CommonOptions.PgHost();
        var port = CommonOptions.PgPort();
        var user = CommonOptions.PgUser();
        var command = new Command("apply", "Make the host match the manifests (or apply a reviewed saved plan.json, without asking). Shows the plan and asks for 'yes' on a terminal. Exit 0 done, 1 error.")
        {
            files, autoApprove, allowLockout, lockTimeout, host, port, user,
        };
        command.SetAction((result, ct) =>
        {
            var lockText = result.GetValue(lockTimeout)!;
            if (!Durations.TryParse(lockText, out var lockValue, out var error))
            {
                io.Error.WriteLine($"pgstate: error: --lock-timeout: {error}");
                return Task.FromResult(ExitCodes.Error);
            }
            return RunAsync(new Arguments(result.GetValue(files)!, result.GetValue(autoApprove),
                new ConnectionOverride(result.GetValue(host), result.GetValue(port), result.GetValue(user)), result.GetValue(allowLockout), lockValue), ct);
        });
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
            if (!saved.IntegrityChecked)
            {
                io.Error.WriteLine($"pgstate: error: refusing to apply {args.Files[0]}: plan formatVersion {saved.FormatVersion} carries no digest and no server identity; make a new plan with this pgstate");
                return ExitCodes.Error;
            }
            if (saved.Manifests.Count == 0)
            {
                io.Error.WriteLine($"pgstate: error: {args.Files[0]} names no manifests: write saved plans with pgstate plan --out");
                return ExitCodes.Error;
            }
            foreach (var m in saved.Manifests)
            {
                string? now;
                try
                {
                    now = File.Exists(m.Path) ? SavedPlanFormat.Hash(m.Path).Sha256 : null;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    io.Error.WriteLine($"pgstate: error: refusing to apply {args.Files[0]}: manifest {PgState.Engine.Rendering.SafeText.Text(m.Path)}: {e.Message}");
                    return ExitCodes.Error;
                }
                if (now != m.Sha256)
                {
                    io.Error.WriteLine($"pgstate: error: refusing to apply {args.Files[0]}: manifest {m.Path} changed since the plan was made; run pgstate plan again");
                    return ExitCodes.Error;
                }
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
            if (await workflow.PlanAsync(host, session, forApply: true, cancellationToken) is not { } plan)
            {
                return ExitCodes.Error;
            }
            if (saved is not null)
            {
                // A saved plan is applied only to the server it was made for, and only if that server is still exactly as planned.
                var savedHost = saved.Plans.FirstOrDefault(p => p.Host == plan.Host);
                var problems = new List<string>();
                if (savedHost is null)
                {
                    problems.Add("the saved plan has no entry for this host");
                }
                else
                {
                    if (plan.Server is { } now && SavedPlanFormat.WrongServer(savedHost, now) is { } wrong)
                    {
                        problems.Add(wrong);
                    }
                    problems.AddRange(SavedPlanFormat.StaleResources(savedHost, plan));
                }
                if (problems.Count > 0)
                {
                    io.Error.WriteLine($"pgstate: error: refusing to apply {args.Files[0]} to host \"{plan.Host}\": the host changed since the plan was made (or is not the server it was made for):");
                    foreach (var s in problems)
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
            var result = await PlanEngine.ApplyAsync(host, session, plan, workflow.Log, cancellationToken);
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
        if (!result.Succeeded)
        {
            o.WriteLine(result.Interrupted ? "Apply interrupted (SIGINT/SIGTERM) between changes. Changes applied:" : "Apply failed. Changes applied:");
            foreach (var c in result.Applied)
            {
                o.WriteLine($"  ✓ {c.Address}");
            }
            if (result.Applied.Count == 0)
            {
                o.WriteLine("  (none)");
            }
            foreach (var a in result.Activations)
            {
                o.WriteLine($"  ✓ configuration {a}");
            }
            if (result.Failed is { } failed)
            {
                o.WriteLine($"Failed:\n  ✗ {failed.Change.Address}: {failed.Error}");
            }
            if (result.NotAttempted.Count > 0)
            {
                o.WriteLine("Not attempted:");
                foreach (var c in result.NotAttempted)
                {
                    o.WriteLine($"  · {c.Address}");
                }
            }
            if (result.Interrupted && result.Applied.Any(c => c.Activation != Activation.None))
            {
                o.WriteLine("Written but not activated (no reload was done after the interruption): the next plan shows them as pending.");
            }
            if (result.AfterError is { } afterError)
            {
                o.WriteLine($"Not confirmed: {afterError}");
            }
            o.WriteLine("Run pgstate plan to see what is left.");
            return;
        }
        o.WriteLine($"Apply complete! Resources: {added} added, {changed} changed, {destroyed} destroyed.");
        if (result.Restarted)
        {
            o.WriteLine("PostgreSQL was restarted to activate restart-only settings.");
        }
        foreach (var p in result.After?.Pending ?? [])
        {
            o.WriteLine($"Pending: {p.Address} = \"{p.Value}\": {(p.Needs == Activation.Restart ? "restart" : "reload")} pending — {p.Note}");
        }
    }
}
