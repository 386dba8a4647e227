using System.CommandLine;
using PgState.Engine.Diagnostics;
using PgState.Engine.Planning;

namespace PgState.Cli.Commands;

/// <summary>pgstate validate: schema, semantic and (when reachable) live checks; every problem of every stage, file:line:col.</summary>
internal sealed class ValidateCommand(IOContext io, HostWorkflow workflow)
{
    public sealed record Arguments(IReadOnlyList<string> Files, string Format, bool Offline, bool RequireSecrets, ConnectionOverride Overrides);

    public Command Build()
    {
        var files = CommonOptions.Files();
        var format = CommonOptions.Format("Output: text (file:line:col: message on stderr) or github (::error annotations on stdout).", "text", "github");
        var offline = new Option<bool>("--offline") { Description = "Skip the checks that need the server (parameter names, ranges)." };
        var requireSecrets = new Option<bool>("--require-secrets") { Description = "A secret whose variable or file is missing is an error (by default a warning: CI jobs validate without secrets)." };
        var host = CommonOptions.PgHost();
        var port = CommonOptions.PgPort();
        var user = CommonOptions.PgUser();
        var command = new Command("validate", "Check manifests against the schema and, when the server is reachable, against its parameters. Exit 0 valid, 1 invalid.")
        {
            files, format, offline, requireSecrets, host, port, user,
        };
        command.SetAction((result, ct) => RunAsync(
            new Arguments(result.GetValue(files)!, result.GetValue(format)!, result.GetValue(offline), result.GetValue(requireSecrets),
                new ConnectionOverride(result.GetValue(host), result.GetValue(port), result.GetValue(user))), ct));
        return command;
    }

    public async Task<int> RunAsync(Arguments args, CancellationToken cancellationToken)
    {
        var hosts = workflow.Load(args.Files, args.Overrides, args.Format, secrets: args.RequireSecrets ? SecretCheck.Require : SecretCheck.Warn);
        if (hosts is null)
        {
            return ExitCodes.Error;
        }
        var ok = true;
        if (!args.Offline)
        {
            foreach (var host in hosts)
            {
                try
                {
                    await using var session = await workflow.ConnectAsync(host, cancellationToken);
                    var diagnostics = new DiagnosticBag();
                    PlanEngine.ValidateServer(session, diagnostics, forApply: false);
                    await PlanEngine.PlanAsync(host, session, diagnostics, cancellationToken);
                    workflow.Print(diagnostics, args.Format, host.Host.Document.Position);
                    ok &= !diagnostics.HasErrors;
                }
                catch (PgStateException e)
                {
                    io.Error.WriteLine($"pgstate: note: {e.Message}; checks against the live server were skipped");
                }
            }
        }
        if (ok)
        {
            io.Error.WriteLine($"pgstate: {hosts.Count} host document(s) valid");
        }
        return ok ? ExitCodes.Ok : ExitCodes.Error;
    }
}
