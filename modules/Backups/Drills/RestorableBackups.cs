using System.Globalization;
using PgState.Engine.Diagnostics;
using PgState.Engine.Resources;

namespace PgState.Modules.Backups;

/// <summary>A finished backup a restore can start from: when it started and when it ended (its consistency point is reached by then).</summary>
public sealed record RestorableBackup(string Path, DateTime StartedUtc, DateTime EndedUtc, bool Verified);

/// <summary>Which backups of a destination can be restored, and which one a target needs.</summary>
public static class RestorableBackups
{
    /// <summary>Finished backups (verified ones only when the backup verifies; pg_verifybackup before 17 cannot read tar, so
    /// every finished tar backup), oldest first. Their end is when backup_manifest, pg_basebackup's last file, was written.</summary>
    public static IReadOnlyList<RestorableBackup> List(DesiredBackup backup) =>
        [.. BackupRunner.List(backup.Destination)
            .Where(e => e.Verified || !backup.Verify || backup.Format == "tar")
            .Select(e => new RestorableBackup(e.Path, e.StartedUtc, EndOf(e), e.Verified))
            .OrderBy(e => e.StartedUtc)];

    private static DateTime EndOf(BackupEntry entry)
    {
        var manifest = Path.Combine(entry.Path, "backup_manifest");
        return File.Exists(manifest) ? File.GetLastWriteTimeUtc(manifest) : entry.StartedUtc;
    }

    /// <summary>The newest backup that ended at or before the target (the newest of all for latest); throws, naming the oldest, when none did.</summary>
    public static RestorableBackup Choose(DesiredBackup backup, IReadOnlyList<RestorableBackup> backups, DateTime? targetUtc)
    {
        if (backups.Count == 0)
        {
            throw new PgStateException($"backup {backup.Name} has no {(backup.Verify ? "verified " : "")}backup in {backup.Destination} to restore");
        }
        if (targetUtc is not { } target)
        {
            return backups[^1];
        }
        return backups.LastOrDefault(b => b.EndedUtc <= target)
            ?? throw new PgStateException($"the target {Stamp(target)} lies before the end of the oldest {(backup.Verify ? "verified " : "")}backup of {backup.Name} " +
                $"({System.IO.Path.GetFileName(backups[0].Path)}, ended {Stamp(backups[0].EndedUtc)}): no backup in {backup.Destination} can be restored to it");
    }

    public static string Stamp(DateTime utc) => utc.ToString("yyyy-MM-dd HH:mm:ss'+00'", CultureInfo.InvariantCulture);
}

/// <summary>Drill settings that need the host: a fixed target against the backups there, the work directory with its links resolved.</summary>
internal static class DrillLiveChecks
{
    public static IEnumerable<Diagnostic> Check(DesiredBackup backup, string? dataDirectory, FactBag facts)
    {
        if (backup.Drill is not { } drill)
        {
            yield break;
        }
        if (drill.Target is DrillTarget.At at)
        {
            var backups = RestorableBackups.List(backup);
            if (backups.Count > 0 && backups.All(b => b.EndedUtc > at.Time.UtcDateTime))
            {
                yield return new Diagnostic(DiagnosticCodes.DrillTargetBeforeBackup, Severity.Error,
                    $"backup {backup.Name}: drill.target {drill.Target.Describe()} lies before the end of the oldest backup there is ({Path.GetFileName(backups[0].Path)}, ended {RestorableBackups.Stamp(backups[0].EndedUtc)}): no backup can be restored to it",
                    drill.TargetPosition);
            }
        }
        foreach (var problem in WorkDirectoryProblems(backup, drill, dataDirectory, facts.One(HostFacts.ArchiveMethod)))
        {
            yield return new Diagnostic(DiagnosticCodes.DrillWorkDirectory, Severity.Error, $"backup {backup.Name}: {problem}", drill.WorkDirectoryPosition);
        }
    }

    /// <summary>
    /// Where the drill's work directory really is (links followed) must not be production's data
    /// directory or inside the WAL archive: checked at validate, and again where the drill runs.
    /// </summary>
    public static IEnumerable<string> WorkDirectoryProblems(DesiredBackup backup, DesiredDrill drill, string? dataDirectory, ArchiveMethodFact? archiveMethod)
    {
        var work = RealPath(drill.WorkDirectory);
        if (dataDirectory is { Length: > 0 } data && DrillBinder.Inside(work, RealPath(data)))
        {
            yield return $"the drill's work directory {drill.WorkDirectory} is {work} once its links are followed: the production data directory {data} or inside it";
        }
        if (archiveMethod is { Method: "copy", Destination: { } archive } && DrillBinder.Inside(work, RealPath(archive)) && !DrillBinder.Inside(drill.WorkDirectory, DrillBinder.Normalize(archive)))
        {
            yield return $"the drill's work directory {drill.WorkDirectory} is {work} once its links are followed: inside the WAL archive {archive}";
        }
    }

    /// <summary>The path with every symbolic link along it resolved (the part that does not exist yet is kept as written).</summary>
    public static string RealPath(string path)
    {
        var parts = Path.GetFullPath(path).Split('/', StringSplitOptions.RemoveEmptyEntries).ToList();
        var resolved = "/";
        var hops = 0;
        for (var i = 0; i < parts.Count; i++)
        {
            var next = Path.Combine(resolved, parts[i]);
            string? link = null;
            try
            {
                link = new FileInfo(next).LinkTarget;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
            if (link is null || ++hops > 40)
            {
                resolved = next;
                continue;
            }
            // Replace this component by the link's target and resolve that again.
            var target = Path.GetFullPath(link, resolved);
            parts = [.. target.Split('/', StringSplitOptions.RemoveEmptyEntries), .. parts.Skip(i + 1)];
            resolved = "/";
            i = -1;
        }
        return DrillBinder.Normalize(resolved);
    }
}
