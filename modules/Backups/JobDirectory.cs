using PgState.Engine.Diagnostics;
using PgState.Engine.Host;

namespace PgState.Modules.Backups;

/// <summary>
/// What root does for a job before the job becomes its user: make a directory the job needs but
/// may not be able to make (its parent is root's), and give it to that user. Nothing inside a
/// directory is ever touched as root: the job's user may have planted links there.
/// </summary>
internal static class JobDirectory
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Makes <paramref name="path"/> (0700, the job's) when it is missing; with <paramref name="adoptEmpty"/> an empty directory of root's is given to the job too.</summary>
    public static void MakeFor(string path, JobIdentity job, bool adoptEmpty = false)
    {
        if (!Posix.IsRoot)
        {
            return;
        }
        var user = Posix.User(job.User) ?? throw new PgStateException($"no user {job.User} on this host");
        (uint Uid, uint Gid) owner = (user.Uid, Posix.Group(job.Group) ?? user.Gid);
        var full = Path.GetFullPath(path);
        var existing = Posix.Stat(full, followLinks: false);
        if (existing is null)
        {
            // Parents as any mkdir -p makes them (traversable); the directory itself private.
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            Directory.CreateDirectory(full, Private);
            Posix.Chown(full, owner.Uid, owner.Gid);
            return;
        }
        if (adoptEmpty && existing.Kind == PosixFileKind.Directory && existing.Uid == 0 && !Directory.EnumerateFileSystemEntries(full).Any())
        {
            Posix.Chown(full, owner.Uid, owner.Gid);
            File.SetUnixFileMode(full, Private);
        }
    }
}
