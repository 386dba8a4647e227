using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Backups;

/// <summary>`pgstate backup run NAME` and `backup verify NAME`: the jobs a schedule starts.</summary>
internal static class BackupVerbs
{
    /// <summary>The one backup NAME names in the manifests (with --host when several hosts declare it); null, said on stderr, otherwise.</summary>
    public static (VerbHost Host, DesiredBackup Backup)? Find(VerbContext context, string name)
    {
        var only = context.String("host");
        var matches = context.Hosts
            .Where(h => only is null || h.Host.Name == only)
            .Select(h => (Host: h, Backup: h.Modules.OfType<BoundBackups>().FirstOrDefault()?.Backups.FirstOrDefault(b => b.Name == name)))
            .Where(m => m.Backup is not null)
            .ToList();
        if (matches.Count == 1)
        {
            return (matches[0].Host, matches[0].Backup!);
        }
        context.Error.WriteLine(matches.Count == 0
            ? $"pgstate: error: no backup named '{name}'{(only is null ? "" : $" for host '{only}'")} in the manifest(s)"
            : $"pgstate: error: backup '{name}' is declared for hosts {string.Join(", ", matches.Select(m => m.Host.Host.Name))}: name one with --host");
        return null;
    }

    public static Task<int> RunAsync(VerbContext context, CancellationToken cancellationToken) => RunOrVerifyAsync(context, verify: false, cancellationToken);

    public static Task<int> VerifyAsync(VerbContext context, CancellationToken cancellationToken) => RunOrVerifyAsync(context, verify: true, cancellationToken);

    private static async Task<int> RunOrVerifyAsync(VerbContext context, bool verify, CancellationToken cancellationToken)
    {
        var name = context.String("name")!;
        if (Find(context, name) is not var (host, backup))
        {
            return 1;
        }
        var secrets = new SecretResolver(context.Environment,
            context.String("credentials-directory") ?? (context.Environment("CREDENTIALS_DIRECTORY") is { Length: > 0 } d ? d : BoundBackups.CredentialsDirectory(host.Paths, host.Host.Name)));
        var job = BoundBackups.JobFor(host.Host.DataDirectory?.Value);
        if (Posix.IsRoot)
        {
            try
            {
                // What only root can do for the job, then the job's own user for the rest of the run.
                if (backup.Password is { } secret)
                {
                    secrets.Pin(secret);
                }
                JobDirectory.MakeFor(backup.Destination, job);
                context.BecomeJobUser(job.User, job.Group);
            }
            catch (Exception e) when (e is PgStateException or IOException or UnauthorizedAccessException)
            {
                context.Output.WriteLine($"backup {name} failed: {e.Message}");
                return 1;
            }
        }
        else if (Posix.UserName(Posix.EffectiveUid) is { } me && me != job.User && host.Host.DataDirectory is not null)
        {
            context.Error.WriteLine($"pgstate: note: backup {name} runs as {me}; its schedule runs it as {job.User}, the data directory's owner");
        }
        // On a terminal pg_basebackup's progress rewrites one line; the next message starts a new one.
        var onProgressLine = false;
        Action<string>? progress = context.ErrorIsTerminal ? line => { context.Error.Write("\r" + line.TrimEnd() + "   "); onProgressLine = true; } : null;
        void Log(string message)
        {
            if (onProgressLine)
            {
                context.Error.WriteLine();
                onProgressLine = false;
            }
            context.Error.WriteLine("pgstate: " + message);
        }
        var runner = new BackupRunner(host.Host, backup, ProcessRunner.Default, secrets, job, Log, progress, host.Facts.One(HostFacts.PgBackRest));
        BackupStatus status;
        try
        {
            status = verify
                ? await runner.VerifyExistingAsync(context.String("backup"), cancellationToken)
                : await runner.RunAsync(cancellationToken);
        }
        catch (PgStateException e)
        {
            context.Output.WriteLine($"backup {name} failed: {e.Message}");
            return 1;
        }
        if (onProgressLine)
        {
            context.Error.WriteLine();
        }
        context.Output.WriteLine(status.Error is null
            ? $"backup {name}: {status.Backup} ({status.Bytes / (1024.0 * 1024):0.0} MB{(backup.IsPgBackRest ? " in the repository" : "")}), {status.Verification ?? "not verified"}"
            : $"backup {name} failed: {status.Error}");
        context.Error.WriteLine($"pgstate: status written to {runner.StatusPath}");
        return status.Error is null ? 0 : 1;
    }
}
