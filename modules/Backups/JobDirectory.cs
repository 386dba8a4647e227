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
        // Links root made are followed, another user's are an error; then the path is walked without following any
        // link, made where missing (parents traversable, the directory itself private), and given to the job's user.
        var full = HostFiles.ResolveLinks(path);
        var existing = Posix.Stat(full, followLinks: false);
        if (existing is null)
        {
            using var made = Posix.OpenDirectoryNoLinks(full, create: true, mode: (int)Private);
            Posix.SetOwnerAndMode(made, owner.Uid, owner.Gid, (int)Private);
            return;
        }
        if (adoptEmpty && existing.Kind == PosixFileKind.Directory && existing.Uid == 0 && !Directory.EnumerateFileSystemEntries(full).Any())
        {
            using var adopted = Posix.OpenDirectoryNoLinks(full);
            Posix.SetOwnerAndMode(adopted, owner.Uid, owner.Gid, (int)Private);
        }
    }
}
