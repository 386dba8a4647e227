using PgState.Engine.Host;
using PgState.Engine.Manifests;

namespace PgState.Engine.Resources;

/// <summary>What `pgstate import` was asked for: which spec fields, the host's name, and the modules' own options.</summary>
public sealed class ImportContext(
    IHostSession session,
    string hostName,
    IReadOnlySet<string>? sections,
    IReadOnlyDictionary<string, object?> values,
    FactBag facts,
    Func<string, (IReadOnlyList<HostManifest> Hosts, string? Error)> loadManifest)
{
    private readonly List<string> _notes = [];

    public IHostSession Session => session;

    /// <summary>metadata.name of the manifest being written (files pgstate wrote name their host).</summary>
    public string HostName => hostName;

    /// <summary>Facts an earlier import published (archive and backup destinations), like a plan's.</summary>
    public FactBag Facts => facts;

    /// <summary>What the manifest cannot say, for the comments at its end and stderr: never dropped silently.</summary>
    public IReadOnlyList<string> Notes => _notes;

    /// <summary>True when the spec field (archiving, hba, roles …) is to be imported.</summary>
    public bool Wants(string section) => sections is null || sections.Contains(section);

    public bool Flag(string name) => values.GetValueOrDefault(name) is true;

    public string? String(string name) => values.GetValueOrDefault(name) as string;

    public void Note(string note) => _notes.Add(note);

    /// <summary>
    /// Loads a manifest file as `pgstate validate` would (schema, hostile values): the hosts it declares,
    /// or the first error. Modules see only the contract; the CLI owns the loader.
    /// </summary>
    public (IReadOnlyList<HostManifest> Hosts, string? Error) LoadManifest(string path) => loadManifest(path);
}

/// <summary>One field of spec, as an import writes it; Order places it among the others (the examples' order).</summary>
public sealed record ImportedField(int Order, YamlOutEntry Entry);

/// <summary>
/// A module that can write its own section(s) of a manifest from the live host, so that planning
/// that manifest against the same host shows no changes. The CLI assembles the document and
/// names no concern; the module reuses its own read code and says what it cannot represent.
/// </summary>
public interface IImportingModule
{
    /// <summary>The spec fields this module writes (for --sections).</summary>
    IReadOnlyList<string> ImportSections { get; }

    /// <summary>When it runs: modules that read facts (directories of destinations) run after those that publish them.</summary>
    int ImportOrder { get; }

    /// <summary>Options of its own (e.g. --all-settings), declared as data; the CLI builds them.</summary>
    IReadOnlyList<VerbParameter> ImportParameters => [];

    /// <summary>Host names that files pgstate wrote on this host carry (pg_hba.conf's header, unit files), best first.</summary>
    IReadOnlyList<string> HostNameHints(IHostSession session) => [];

    Task<IReadOnlyList<ImportedField>> ImportAsync(ImportContext context, CancellationToken cancellationToken);
}
