using System.CommandLine;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Modules.Backups;

namespace PgState.Cli.Commands;

/// <summary>pgstate backup run NAME / backup verify NAME: the jobs a backup schedule starts. Exit 0 ok, 1 failed.</summary>
internal sealed class BackupCommand(IOContext io, HostWorkflow workflow)
{
    public sealed record Arguments(string Name, IReadOnlyList<string> Manifests, bool VerifyOnly, string? Backup, ConnectionOverride Overrides);

    public Command Build()
    {
        Command Make(string verb, string description, bool verifyOnly)
        {
            var name = new Argument<string>("NAME") { Description = "The backup's name in spec.backups." };
            var manifest = new Option<string[]>("--manifest") { HelpName = "FILE", Description = "Manifest file(s) that declare the backup.", Required = true, AllowMultipleArgumentsPerToken = true };
            var backupPath = new Option<string?>("--backup") { HelpName = "DIR", Description = "The backup to verify (default: the newest)." };
            var host = CommonOptions.PgHost();
            var port = CommonOptions.PgPort();
            var user = CommonOptions.PgUser();
            var command = new Command(verb, description) { name, manifest, host, port, user };
            if (verifyOnly)
            {
                command.Add(backupPath);
            }
            command.SetAction((r, ct) => RunAsync(new Arguments(r.GetValue(name)!, r.GetValue(manifest)!, verifyOnly, r.GetValue(backupPath),
                new ConnectionOverride(r.GetValue(host), r.GetValue(port), r.GetValue(user))), ct));
            return command;
        }
        return new Command("backup", "Base backups declared in spec.backups.")
        {
            Make("run", "Take the backup now: pg_basebackup -X stream into DEST/<UTC time>.partial, rename, pg_verifybackup, retention, status file.", false),
            Make("verify", "Verify a finished backup again with pg_verifybackup and record the result in the status file.", true),
        };
    }

    public async Task<int> RunAsync(Arguments args, CancellationToken cancellationToken)
    {
        var hosts = workflow.Load(args.Manifests, args.Overrides);
        if (hosts is null)
        {
            return ExitCodes.Error;
        }
        foreach (var host in hosts)
        {
            var diagnostics = new DiagnosticBag();
            if (BackupsModule.Find(host.Host, args.Name, diagnostics) is not { } backup)
            {
                continue;
            }
            var runner = new BackupRunner(host.Host, backup, ProcessRunner.Default, io.Environment, m => io.Error.WriteLine("pgstate: " + m));
            var status = args.VerifyOnly
                ? await runner.VerifyExistingAsync(args.Backup, cancellationToken)
                : await runner.RunAsync(cancellationToken);
            io.Output.WriteLine(status.Error is null
                ? $"backup {args.Name}: {status.Backup} ({status.Bytes / (1024.0 * 1024):0.0} MB), {status.Verification ?? "not verified"}"
                : $"backup {args.Name} failed: {status.Error}");
            io.Error.WriteLine($"pgstate: status written to {runner.StatusPath}");
            return status.Error is null ? ExitCodes.Ok : ExitCodes.Error;
        }
        io.Error.WriteLine($"pgstate: error: no backup named '{args.Name}' in {string.Join(", ", args.Manifests)}");
        return ExitCodes.Error;
    }
}
