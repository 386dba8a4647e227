using PgState.Engine.Diagnostics;

namespace PgState.Engine.Resources;

/// <summary>A typed name of a fact one module publishes and others read.</summary>
public sealed class FactKey<T>(string name)
    where T : notnull
{
    public string Name { get; } = name;

    public override string ToString() => Name;
}

/// <summary>
/// Facts several modules need, published once by the module that owns them (the archive
/// destination by archiving, backup destinations by backups …) so that no module reads another
/// module's section. Read them at plan or check time: every module has bound by then.
/// </summary>
public sealed class FactBag
{
    private readonly Dictionary<string, List<object>> _facts = new(StringComparer.Ordinal);

    public void Publish<T>(FactKey<T> key, T value)
        where T : notnull
    {
        if (!_facts.TryGetValue(key.Name, out var list))
        {
            _facts[key.Name] = list = [];
        }
        list.Add(value);
    }

    public IReadOnlyList<T> All<T>(FactKey<T> key)
        where T : notnull =>
        _facts.TryGetValue(key.Name, out var list) ? [.. list.OfType<T>()] : [];

    public T? One<T>(FactKey<T> key)
        where T : class =>
        All(key).FirstOrDefault();
}

/// <summary>A directory the server or a job writes into, and who declared it.</summary>
public sealed record StorageDestination(string Purpose, string Path, SourcePosition? Position);

/// <summary>How WAL is archived, as the archiving module binds it.</summary>
public sealed record ArchiveMethodFact(string Method, string? Destination, string? Stanza, SourcePosition? Position)
{
    /// <summary>For method command: how a restore reads the archive back (restore_command).</summary>
    public string? RestoreCommand { get; init; }
}

/// <summary>The pgBackRest setup a manifest declares: stanza and configuration file.</summary>
public sealed record PgBackRestFact(string Stanza, string ConfigPath, SourcePosition? Position);

/// <summary>Thresholds of the health checks that other modules' checks use.</summary>
public sealed record CheckThresholdsFact(TimeSpan? BackupMaxAge);

/// <summary>How much WAL an inactive slot may hold before it is worth a warning (spec.slotRetentionWarn, published by the module that reads it).</summary>
public sealed record SlotRetentionFact(long Bytes);

public static class HostFacts
{
    /// <summary>Directories PostgreSQL or pgstate's jobs write into (archive, backups): their labels matter.</summary>
    public static readonly FactKey<StorageDestination> StorageDestinations = new("storage-destinations");

    public static readonly FactKey<ArchiveMethodFact> ArchiveMethod = new("archive-method");

    public static readonly FactKey<PgBackRestFact> PgBackRest = new("pgbackrest");

    public static readonly FactKey<CheckThresholdsFact> CheckThresholds = new("check-thresholds");

    public static readonly FactKey<SlotRetentionFact> SlotRetention = new("slot-retention");
}

/// <summary>The SELinux types the PostgreSQL server domain (postgresql_t) may write.</summary>
public static class PostgresLabels
{
    public static readonly IReadOnlyList<string> Writable = ["postgresql_db_t", "postgresql_log_t", "postgresql_tmp_t", "postgresql_var_run_t"];
}
