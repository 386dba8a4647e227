using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Modules.Backups;

/// <summary>`pgstate restore drill NAME` (the job a drill schedule starts) and `pgstate restore NAME --to DIR` (the real thing).</summary>
internal static class RestoreVerbs
{
    public static readonly IReadOnlyList<Verb> All =
    [
        new Verb(["restore", "drill"],
            "Prove the backup restores: copy the newest verified backup into a scratch directory, replay the archive to the drill's target on a temporary server " +
            "(private socket, no TCP, archive_mode off), run the probes, measure RPO and RTO, stop, remove it. Writes DEST/.pgstate-drill-NAME.json. Exit 0 passed, 1 failed.",
            [
                new VerbParameter("name", "The backup's name in spec.backups.", VerbParameterKind.Argument, HelpName: "NAME"),
                new VerbParameter("target", "Override drill.target: latest, a timestamp with a time zone, or \"DURATION ago\".", VerbParameterKind.Option, HelpName: "TARGET"),
                new VerbParameter("keep", "Leave the recovered scratch directory (stopped) for inspection.", VerbParameterKind.Flag),
                new VerbParameter("host", "The host (metadata.name) whose backup it is, when several in the manifests have one of that name.", VerbParameterKind.Option, HelpName: "HOST"),
                new VerbParameter("format", "text, markdown or json.", VerbParameterKind.Option, Default: "text", Allowed: ["text", "markdown", "json"]),
            ],
            VerbManifests.ManifestOption, DrillAsync),
        new Verb(["restore"],
            "Restore a backup for real into DIR (new or empty): the backup, recovery settings for the target (restore_command from the archive, recovery_target_action = promote), " +
            "ready to start; --start starts it and waits until it is promoted. Prints what to do next. Exit 0 ok, 1 failed.",
            [
                new VerbParameter("name", "The backup's name in spec.backups.", VerbParameterKind.Argument, HelpName: "NAME"),
                new VerbParameter("to", "The directory to restore into (new or empty).", VerbParameterKind.Option, Required: true, HelpName: "DIR"),
                new VerbParameter("target", "latest (default), a timestamp with a time zone, or \"DURATION ago\".", VerbParameterKind.Option, Default: "latest", HelpName: "TARGET"),
                new VerbParameter("start", "Start the restored server (its own configuration) and wait until it is promoted.", VerbParameterKind.Flag),
                new VerbParameter("host", "The host (metadata.name) whose backup it is, when several in the manifests have one of that name.", VerbParameterKind.Option, HelpName: "HOST"),
                new VerbParameter("timeout", "How long --start waits for recovery (default 1h).", VerbParameterKind.Option, Default: "1h", HelpName: "DURATION"),
                new VerbParameter("format", "text, markdown or json.", VerbParameterKind.Option, Default: "text", Allowed: ["text", "markdown", "json"]),
            ],
            VerbManifests.ManifestOption, RestoreAsync),
    ];

    private static RestoreContext Context(VerbContext context, VerbHost host, DesiredBackup backup, DesiredDrill drill)
    {
        // Progress and steps on a terminal only: a scheduled drill (cron mails what it prints) prints its report, nothing else.
        var terminal = context.ErrorIsTerminal;
        Action<string> log = terminal ? m => context.Error.Write("\r\u001b[K" + "pgstate: " + m + "\n") : _ => { };
        Action<string>? progress = terminal ? m => context.Error.Write("\r\u001b[K" + m) : null;
        return new RestoreContext(host.Host, backup, drill, host.Facts.One(HostFacts.ArchiveMethod), host.Facts.One(HostFacts.PgBackRest),
            ProcessRunner.Default, log, progress);
    }

    /// <summary>Started as root: make the directory the job writes into (its parent may be root's), then become the data directory's owner.</summary>
    private static void BecomeJobUser(VerbContext context, VerbHost host, string directory, bool adoptEmpty)
    {
        if (!Posix.IsRoot)
        {
            return;
        }
        var job = BoundBackups.JobFor(host.Host.DataDirectory?.Value);
        JobDirectory.MakeFor(directory, job, adoptEmpty);
        context.BecomeJobUser(job.User, job.Group);
    }

    private static bool TryTarget(VerbContext context, string? text, DrillTarget fallback, out DrillTarget target)
    {
        target = fallback;
        if (text is null)
        {
            return true;
        }
        if (DrillTarget.TryParse(text, out target, out var error))
        {
            return true;
        }
        context.Error.WriteLine($"pgstate: error: --target: {error}");
        return false;
    }

    private static void Write(VerbContext context, DrillReport report)
    {
        context.Output.Write(context.String("format") switch
        {
            "json" => DrillReports.Json(report),
            "markdown" => DrillReports.Markdown(report),
            _ => DrillReports.Text(report),
        });
    }

    private static async Task<int> DrillAsync(VerbContext context, CancellationToken cancellationToken)
    {
        if (BackupVerbs.Find(context, context.String("name")!) is not var (host, backup))
        {
            return 1;
        }
        var drill = backup.Drill ?? DesiredDrill.Default(backup);
        if (!TryTarget(context, context.String("target"), drill.Target, out var target))
        {
            return 1;
        }
        var restore = Context(context, host, backup, drill);
        DrillReport report;
        try
        {
            BecomeJobUser(context, host, drill.WorkDirectory, adoptEmpty: false);
            report = await new DrillRunner(restore).DrillAsync(target, drill.Keep || context.Flag("keep"), cancellationToken);
        }
        catch (Exception e) when (e is PgStateException or IOException or UnauthorizedAccessException)
        {
            // Only what happens before a report exists.
            context.Output.WriteLine($"restore drill of backup {backup.Name} failed: {e.Message}");
            return 1;
        }
        if (context.ErrorIsTerminal)
        {
            context.Error.Write("\r\u001b[K");
            context.Error.WriteLine($"pgstate: status written to {DrillReports.StatusFile(backup)}");
        }
        Write(context, report);
        return report.Passed ? 0 : 1;
    }

    private static async Task<int> RestoreAsync(VerbContext context, CancellationToken cancellationToken)
    {
        if (BackupVerbs.Find(context, context.String("name")!) is not var (host, backup))
        {
            return 1;
        }
        if (!TryTarget(context, context.String("target"), DrillTarget.LatestTarget, out var target))
        {
            return 1;
        }
        if (!Durations.TryParse(context.String("timeout") ?? "1h", out var timeout, out var error))
        {
            context.Error.WriteLine($"pgstate: error: --timeout: {error}");
            return 1;
        }
        var restore = Context(context, host, backup, backup.Drill ?? DesiredDrill.Default(backup));
        try
        {
            var runner = new DrillRunner(restore);
            var directory = Path.GetFullPath(context.String("to")!);
            runner.CheckRestoreDirectory(directory);
            var created = !Directory.Exists(directory);
            BecomeJobUser(context, host, directory, adoptEmpty: true);
            var (report, next, startRefused) = await runner.RestoreAsync(directory, target, context.Flag("start"), timeout, cancellationToken, created);
            if (context.ErrorIsTerminal)
            {
                context.Error.Write("\r\u001b[K");
            }
            Write(context, report);
            if (context.String("format") != "json")
            {
                context.Output.WriteLine();
                context.Output.WriteLine("Next:");
                foreach (var step in next)
                {
                    context.Output.WriteLine("  - " + step);
                }
            }
            // Restored but not started though --start asked for it: a script must not go on as if the server ran.
            return startRefused ? 1 : 0;
        }
        catch (Exception e) when (e is PgStateException or IOException or UnauthorizedAccessException)
        {
            if (context.ErrorIsTerminal)
            {
                context.Error.Write("\r\u001b[K");
            }
            context.Output.WriteLine($"restore of backup {backup.Name} failed: {e.Message}");
            return 1;
        }
    }
}
