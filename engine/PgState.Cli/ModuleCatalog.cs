using PgState.Engine.Resources;

namespace PgState.Cli;

/// <summary>The composition root: one line per module. Adding a concern = a module project, its schema fragment, one line here.</summary>
internal static class ModuleCatalog
{
    public static IReadOnlyList<IModule> All { get; } =
    [
        new Modules.Selinux.SelinuxModule(),
        new Modules.PgBackRest.PgBackRestModule(),
        new Modules.Archiving.ArchivingModule(),
        new Modules.Replication.ReplicationModule(),
        new Modules.Hba.HbaModule(),
        new Modules.Backups.BackupsModule(),
        new Modules.Checks.ChecksModule(),
    ];
}
