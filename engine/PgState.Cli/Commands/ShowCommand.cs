using System.CommandLine;
using PgState.Engine.Planning;
using PgState.Engine.Rendering;

namespace PgState.Cli.Commands;

/// <summary>pgstate show plan.json: render a saved plan as text, markdown or JSON.</summary>
internal sealed class ShowCommand(IOContext io)
{
    public Command Build()
    {
        var file = new Argument<string>("PLAN") { Description = "A plan written by pgstate plan --out." };
        var format = CommonOptions.Format("text, markdown or json.", "text", "markdown", "json");
        var command = new Command("show", "Render a saved plan.") { file, format };
        command.SetAction(result =>
        {
            var saved = SavedPlanFormat.Read(result.GetValue(file)!);
            io.Output.Write(PlanRenderer.Render(saved.Plans, Enum.Parse<OutputFormat>(result.GetValue(format)!, ignoreCase: true), io.Colour));
            return ExitCodes.Ok;
        });
        return command;
    }
}
