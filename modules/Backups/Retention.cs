namespace PgState.Modules.Backups;

/// <summary>A finished backup in the destination: its directory name is its UTC start time.</summary>
public sealed record BackupEntry(string Path, DateTime StartedUtc, bool Verified);

/// <summary>
/// Which backups retention removes: keep the newest `count` verified ones, drop what is older than
/// `maxAge`, drop unverified backups older than the newest verified one — but never the newest
/// verified backup, whatever its age. Pure.
/// </summary>
public static class Retention
{
    public static IReadOnlyList<BackupEntry> ToDelete(IReadOnlyList<BackupEntry> backups, DateTime nowUtc, int? count, TimeSpan? maxAge)
    {
        var ordered = backups.OrderByDescending(b => b.StartedUtc).ToList();
        var newestVerified = ordered.FirstOrDefault(b => b.Verified);
        var delete = new List<BackupEntry>();
        var verifiedSeen = 0;
        foreach (var b in ordered)
        {
            if (b == newestVerified)
            {
                verifiedSeen++;
                continue;
            }
            if (!b.Verified)
            {
                if (newestVerified is not null && b.StartedUtc < newestVerified.StartedUtc)
                {
                    delete.Add(b);
                }
                continue;
            }
            verifiedSeen++;
            if ((count is { } c && verifiedSeen > c) || (maxAge is { } age && nowUtc - b.StartedUtc > age))
            {
                delete.Add(b);
            }
        }
        return delete;
    }
}
